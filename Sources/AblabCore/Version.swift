/// The version of ablab written into every file it produces.
public enum AblabVersion {
    public static let string = "0.1.0"
}
