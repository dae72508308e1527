import Testing
@testable import ActivationCache
