import Testing
@testable import ModelRuntime
