import AblabCore

// Stage module Report: see README, "Pipeline".
public enum ReportModule {}
