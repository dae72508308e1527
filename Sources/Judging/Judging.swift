import AblabCore

// Stage module Judging: see README, "Pipeline".
public enum JudgingModule {}
