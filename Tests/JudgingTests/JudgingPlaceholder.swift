import Testing
@testable import Judging
