import AblabCore

// Stage module ModelRuntime: see README, "Pipeline".
public enum ModelRuntimeModule {}
