import AblabCore

// Stage module Abliteration: see README, "Pipeline".
public enum AbliterationModule {}
