import Testing
@testable import Study
