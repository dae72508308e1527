import AblabCore

// Stage module Study: see README, "Pipeline".
public enum StudyModule {}
