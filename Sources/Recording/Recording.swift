import AblabCore

// Stage module Recording: see README, "Pipeline".
public enum RecordingModule {}
