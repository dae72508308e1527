import AblabCore

// Stage module ModelRuntime: see README, "Pipeline". GGUF reading/writing lives in GGUF/.
public enum ModelRuntimeModule {}
