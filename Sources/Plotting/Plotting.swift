import AblabCore

// Stage module Plotting: see README, "Pipeline".
public enum PlottingModule {}
