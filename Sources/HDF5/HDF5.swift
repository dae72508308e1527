import AblabCore

// Stage module HDF5: see README, "Pipeline".
public enum HDF5Module {}
