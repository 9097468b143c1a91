import CallbackQueue
import PayhookCore
import Testing

/// Backoff and state transitions as pure logic, no database.
@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(baseSeconds: 5, factor: 2, maxDelaySeconds: 3600, maxAttempts: 12)

    @Test func capGrowsGeometricallyUpToTheMaximum() {
        #expect(policy.delayCap(afterAttempt: 1) == 5)
        #expect(policy.delayCap(afterAttempt: 2) == 10)
        #expect(policy.delayCap(afterAttempt: 5) == 80)
        #expect(policy.delayCap(afterAttempt: 10) == 2560)
        #expect(policy.delayCap(afterAttempt: 11) == 3600)
        #expect(policy.delayCap(afterAttempt: 5000) == 3600)  // no overflow to infinity or NaN
    }

    @Test func fullJitterStaysWithinZeroAndTheCap() {
        var random = SystemRandomNumberGenerator()
        var seen: [Double] = []
        for _ in 0..<2000 {
            guard case .retry(let delay) = policy.decide(afterFailedAttempt: 3, using: &random) else {
                Issue.record("attempt 3 of 12 must retry")
                return
            }
            #expect(delay >= 0 && delay <= 20)
            seen.append(delay)
        }
        // Full jitter spreads over the whole range, not around the cap.
        #expect(seen.min()! < 2)
        #expect(seen.max()! > 18)
    }

    @Test func theBudgetEndsInGivingUp() {
        #expect(policy.decide(afterFailedAttempt: 11) != .giveUp)
        #expect(policy.decide(afterFailedAttempt: 12) == .giveUp)
        #expect(policy.decide(afterFailedAttempt: 40) == .giveUp)
        #expect(RetryPolicy(maxAttempts: 1).decide(afterFailedAttempt: 1) == .giveUp)
        #expect(RetryPolicy(baseSeconds: 0).decide(afterFailedAttempt: 1) == .retry(afterSeconds: 0))
    }

    @Test func outcomesMoveRowsToHonestStates() {
        #expect(AttemptOutcome.done.nextState == .done)
        #expect(AttemptOutcome.rejected(reason: .badSignature, error: nil).nextState == .rejected)
        #expect(AttemptOutcome.retry(afterSeconds: 3, reason: nil, error: "timeout").nextState == .pending)
        #expect(AttemptOutcome.dead(reason: nil, error: "timeout").nextState == .dead)
        #expect(AttemptOutcome.released.nextState == .pending)
        for outcome: AttemptOutcome in [.done, .rejected(reason: ReasonCode(rawValue: "x"), error: nil), .released,
                                        .retry(afterSeconds: 1, reason: nil, error: "e"), .dead(reason: nil, error: "e")] {
            #expect(CallbackState.processing.canMove(to: outcome.nextState))
        }
    }

    @Test func stateMachineAllowsOnlyTheDocumentedMoves() {
        let allowed: Set<String> = [
            "pending>processing", "processing>processing", "processing>done", "processing>rejected",
            "processing>dead", "processing>pending", "dead>pending",
        ]
        for from in CallbackState.allCases {
            for to in CallbackState.allCases {
                #expect(from.canMove(to: to) == allowed.contains("\(from.rawValue)>\(to.rawValue)"),
                        "\(from) → \(to)")
            }
        }
        #expect(CallbackState.done.isFinal && CallbackState.rejected.isFinal)
        #expect(!CallbackState.dead.isFinal)  // an operator can replay it
    }
}
