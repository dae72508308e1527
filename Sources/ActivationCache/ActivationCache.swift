import AblabCore

// Stage module ActivationCache: see README, "Pipeline".
public enum ActivationCacheModule {}
