import AblabCore

// Stage module Judging: judges (rules, imported labels; model judges later), judgments files,
// agreement statistics, and the study's own human / judge data.
public enum JudgingModule {}
