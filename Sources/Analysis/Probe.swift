import Foundation

/// L2-regularised logistic regression fitted by Newton's method in Double (deterministic).
///
/// Minimises ½‖w‖² + C Σᵢ [log(1 + e^{zᵢ}) − yᵢ zᵢ], zᵢ = w · xᵢ + b, with the intercept b not
/// penalised: the objective of sklearn's `LogisticRegression(C=C, solver="lbfgs")`.
public struct LogisticModel: Sendable, Equatable {
    public var coefficients: [Double] // [k]
    public var intercept: Double
    public var iterations: Int
    public var converged: Bool

    public func decision(_ x: ArraySlice<Double>) -> Double {
        var z = intercept
        for (j, v) in x.enumerated() { z += coefficients[j] * v }
        return z
    }
}

public enum Logistic {
    /// Fits on `x` ([n, k] row-major) with labels `y` (true = positive class).
    public static func fit(x: [Double], n: Int, k: Int, y: [Bool], c: Double = 1, maxIterations: Int = 100) -> LogisticModel {
        precondition(x.count == n * k && y.count == n)
        let p = k + 1 // parameters: w[0..<k], b
        var theta = [Double](repeating: 0, count: p)
        var z = [Double](repeating: 0, count: n)
        var prob = [Double](repeating: 0, count: n)
        var grad = [Double](repeating: 0, count: p)
        var hess = [Double](repeating: 0, count: p * p)

        func objective(_ t: [Double]) -> Double {
            var f = 0.0
            for j in 0..<k { f += 0.5 * t[j] * t[j] }
            for i in 0..<n {
                var zi = t[k]
                for j in 0..<k { zi += t[j] * x[i * k + j] }
                f += c * (softplus(zi) - (y[i] ? zi : 0))
            }
            return f
        }

        var converged = false
        var iter = 0
        var f = objective(theta)
        while iter < maxIterations {
            iter += 1
            // Gradient and Hessian at theta.
            for i in 0..<n {
                var zi = theta[k]
                for j in 0..<k { zi += theta[j] * x[i * k + j] }
                z[i] = zi
                prob[i] = sigmoid(zi)
            }
            for j in 0..<p { grad[j] = j < k ? theta[j] : 0 }
            for j in 0..<(p * p) { hess[j] = 0 }
            for j in 0..<k { hess[j * p + j] = 1 }
            for i in 0..<n {
                let r = c * (prob[i] - (y[i] ? 1 : 0))
                let w = c * prob[i] * (1 - prob[i])
                for a in 0..<p {
                    let xa = a < k ? x[i * k + a] : 1
                    grad[a] += r * xa
                    let wxa = w * xa
                    for b in 0...a {
                        let xb = b < k ? x[i * k + b] : 1
                        hess[a * p + b] += wxa * xb
                    }
                }
            }
            let gmax = grad.map(abs).max() ?? 0
            if gmax <= 1e-10 * max(1, c * Double(n)) { converged = true; break }
            guard let step = choleskySolve(hess, grad, p) else { break }
            // Backtracking (Armijo) on the full Newton step.
            var alpha = 1.0
            let slope = zip(grad, step).reduce(0) { $0 - $1.0 * $1.1 }
            var accepted = false
            var trial = theta
            for _ in 0..<60 {
                for j in 0..<p { trial[j] = theta[j] - alpha * step[j] }
                let ft = objective(trial)
                if ft <= f + 1e-4 * alpha * slope || abs(ft - f) <= 1e-15 * max(1, abs(f)) { f = ft; accepted = true; break }
                alpha *= 0.5
            }
            if !accepted { break }
            let stepMax = (0..<p).map { abs(alpha * step[$0]) }.max() ?? 0
            theta = trial
            let thetaMax = theta.map(abs).max() ?? 0
            if stepMax <= 1e-13 * (1 + thetaMax) { converged = true; break }
        }
        return LogisticModel(coefficients: Array(theta[0..<k]), intercept: theta[k], iterations: iter, converged: converged)
    }

    @inline(__always) static func sigmoid(_ z: Double) -> Double {
        if z >= 0 { return 1 / (1 + exp(-z)) }
        let e = exp(z); return e / (1 + e)
    }
    @inline(__always) static func softplus(_ z: Double) -> Double {
        z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))
    }

    /// Solves H s = g for symmetric positive definite H (lower triangle filled), p × p. nil if not PD.
    static func choleskySolve(_ hLower: [Double], _ g: [Double], _ p: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: p * p)
        for i in 0..<p {
            for j in 0...i {
                var s = hLower[i * p + j]
                for t in 0..<j { s -= l[i * p + t] * l[j * p + t] }
                if i == j {
                    guard s > 0 else { return nil }
                    l[i * p + i] = s.squareRoot()
                } else {
                    l[i * p + j] = s / l[j * p + j]
                }
            }
        }
        var yv = g
        for i in 0..<p {
            var s = yv[i]
            for t in 0..<i { s -= l[i * p + t] * yv[t] }
            yv[i] = s / l[i * p + i]
        }
        for i in stride(from: p - 1, through: 0, by: -1) {
            var s = yv[i]
            for t in (i + 1)..<p { s -= l[t * p + i] * yv[t] }
            yv[i] = s / l[i * p + i]
        }
        return yv
    }
}

/// Column standardisation fitted on train rows (population SD, as sklearn's StandardScaler; a zero
/// SD becomes 1).
public struct Standardizer: Sendable {
    public var mean: [Double]
    public var scale: [Double]
    public init(fit x: [Double], n: Int, k: Int) {
        var m = [Double](repeating: 0, count: k), s = [Double](repeating: 0, count: k)
        for i in 0..<n { for j in 0..<k { m[j] += x[i * k + j] } }
        for j in 0..<k { m[j] /= Double(max(n, 1)) }
        for i in 0..<n { for j in 0..<k { let d = x[i * k + j] - m[j]; s[j] += d * d } }
        for j in 0..<k { let sd = (s[j] / Double(max(n, 1))).squareRoot(); s[j] = sd > 0 ? sd : 1 }
        mean = m; scale = s
    }
    public func apply(_ x: [Double], n: Int, k: Int) -> [Double] {
        var out = x
        for i in 0..<n { for j in 0..<k { out[i * k + j] = (x[i * k + j] - mean[j]) / scale[j] } }
        return out
    }
}
