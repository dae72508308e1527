import AblabCore

// Stage module Analysis: see README, "Pipeline".
public enum AnalysisModule {}
