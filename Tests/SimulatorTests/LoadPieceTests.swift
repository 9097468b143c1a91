import Channels
import Foundation
import PayhookCore
import Simulator
import Testing

@Suite struct LoadMixTests {
    @Test func parsesTheRealisticMix() throws {
        let mix = try LoadMix.parse("valid=80,duplicate=10,forged=3,tampered=3,stale=2,probe=1,oversize=1")
        #expect(mix == LoadMix.realistic)
        #expect(try LoadMix.parse(mix.description) == mix)
        #expect(try LoadMix.parse(" valid = 1 ").weights == [.valid: 1])
    }

    @Test(arguments: ["", "valid", "valid=x", "valid=-1", "bogus=1", "valid=1,valid=2", "valid=0,forged=0"])
    func refusesBadMixes(_ text: String) {
        #expect(throws: SimulatorError.self) { try LoadMix.parse(text) }
    }

    @Test func countsAddUpExactly() {
        let counts = LoadMix.realistic.counts(total: 1000)
        #expect(counts == [.valid: 800, .duplicate: 100, .forged: 30, .tampered: 30, .stale: 20, .probe: 10, .oversize: 10])
        for total in [1, 7, 99, 101, 12_345] {
            #expect(LoadMix.realistic.counts(total: total).values.reduce(0, +) == total)
        }
        // Largest remainder: 3 orders over weights 1:1:1 give one each.
        #expect(LoadMix(weights: [.valid: 1, .forged: 1, .probe: 1]).counts(total: 3) == [.valid: 1, .forged: 1, .probe: 1])
    }

    @Test func sequenceSpreadsKindsOverTheRun() {
        let sequence = LoadMix(weights: [.valid: 3, .forged: 1]).sequence(total: 400)
        #expect(sequence.count == 400)
        // Every quarter of the run carries a quarter of the forged orders.
        for quarter in 0..<4 {
            let slice = sequence[(quarter * 100)..<((quarter + 1) * 100)]
            #expect(slice.filter { $0 == .forged }.count == 25)
        }
    }
}

@Suite struct LatencySummaryTests {
    @Test func nearestRankPercentiles() {
        let summary = LatencySummary(microseconds: (1...100).reversed().map(Int64.init))
        #expect(summary.p50 == 50)
        #expect(summary.p90 == 90)
        #expect(summary.p99 == 99)
        #expect(summary.maximum == 100)
        #expect(summary.percentile(0) == 1)
        #expect(LatencySummary(microseconds: [7]).p99 == 7)
        #expect(LatencySummary(microseconds: []).p50 == 0)
    }
}

@Suite struct NotifyFactoryTests {
    static let factory = NotifyFactory(channels: sharedChannels, oversizeBytes: 4096)
    static let adapters = Dictionary(uniqueKeysWithValues: sharedChannels.configurations(baseURL: "http://127.0.0.1:1")
        .map { ($0.channelID, $0.makeAdapter()) })

    static let cases: [(String, NotifyKind)] = SimulatedChannels.channelIDs.flatMap { channel in
        NotifyFactory.kinds(for: channel).map { (channel, $0) }
    }

    @Test(arguments: cases)
    func notifiesAreJudgedAsTheirKindPromises(channel: String, kind: NotifyKind) throws {
        let order = paidOrder("ORDER-KIND-1", amount: 5000)
        let notify = Self.factory.notify(kind, channel: channel, order: order, eventID: "EV-\(kind)")
        #expect(notify.channel == channel)
        let adapter = try #require(Self.adapters[channel])
        let result = adapter.verifyResult(notify.rawCallback())
        switch kind {
        case .valid, .duplicate:
            let notification = try result.get()
            #expect(notification.outTradeNo == "ORDER-KIND-1")
            #expect(notification.amountMinor == 5000)
            #expect(notification.status == .paid)
        case .forged, .tampered, .stale, .probe:
            guard case .failure(let rejection) = result else {
                Issue.record("\(kind) notify on \(channel) was accepted")
                return
            }
            #expect(rejection.reason.rawValue == kind.expectedCallback?.reason)
        case .oversize:
            #expect(notify.body.count > 4096)
        }
    }

    @Test func tamperedBodiesCarryTheRaisedAmount() {
        let order = paidOrder("ORDER-T", amount: 1234)
        let alipay = Self.factory.notify(.tampered, channel: "alipay", order: order, eventID: "E")
        #expect(String(decoding: alipay.body, as: UTF8.self).contains("total_amount=112.34"))
        let points = Self.factory.notify(.tampered, channel: "points", order: order, eventID: "E")
        #expect(String(decoding: points.body, as: UTF8.self).contains("\"amount\":\"112.34\""))
    }

    @Test func planSignsEverySendAndRepeatsDuplicates() async throws {
        let mix = LoadMix(weights: [.valid: 2, .duplicate: 1, .stale: 1])
        let plan = await LoadPlan.make(factory: Self.factory, mix: mix, count: 40)
        #expect(plan.orders.count == 40)
        #expect(plan.sends.count == 50)
        #expect(plan.sends.map(\.sequence) == Array(0..<50))
        #expect(Set(plan.orders.map(\.outTradeNo)).count == 40)
        #expect(plan.orders.filter { $0.kind == .stale }.allSatisfy { $0.channel == "wechatpay" })
        #expect(plan.orders.allSatisfy { ($0.book.status == .paid) == $0.kind.paysOrder })
        for order in plan.orders where order.kind == .duplicate {
            let index = plan.orders.firstIndex { $0.outTradeNo == order.outTradeNo }!
            let copies = plan.sends.filter { $0.orderIndex == index }
            #expect(copies.count == 2)
            #expect(copies[0].notify.body == copies[1].notify.body)
        }
        // Every send verifies as its kind says.
        for send in plan.sends {
            let order = plan.orders[send.orderIndex]
            let result = Self.adapters[order.channel]!.verifyResult(send.notify.rawCallback())
            if order.kind.paysOrder {
                #expect(try result.get().outTradeNo == order.outTradeNo)
            } else if case .failure(let rejection) = result {
                #expect(rejection.reason == .staleTimestamp)
            } else {
                Issue.record("stale notify accepted")
            }
        }
    }
}

@Suite struct LoadRunnerResendTests {
    @Test func resendsUntilAcknowledgedOnlyWhenAskedTo() async throws {
        let plan = await LoadPlan.make(factory: NotifyFactoryTests.factory, mix: LoadMix(weights: [.valid: 1]), count: 6)
        let inbox = try await NotifyInbox.start()

        // Sent once: the three refused (500) stay refused.
        inbox.refuse(next: 3)
        let once = try await LoadRunner(options: .init(receiverURL: inbox.baseURL, connections: 1)).run(plan)
        #expect(once.statuses.filter { $0 == 500 }.count == 3)
        #expect(once.progress.retried == 0)

        // Resent: every send ends acknowledged, each refusal cost one resend.
        inbox.refuse(next: 3)
        let resent = try await LoadRunner(options: .init(receiverURL: inbox.baseURL, connections: 1, retryFor: .seconds(60))).run(plan)
        #expect(resent.statuses.allSatisfy { $0.map { (200..<300).contains($0) } == true })
        #expect(resent.progress.retried == 3)
        #expect(inbox.arrivals.count == 6 + 6 + 3)
        await inbox.stop()
    }

    @Test func channelsResendOnlyWithoutAnAnswerOrAfterA5xx() {
        #expect(LoadRunner.resends(nil))
        #expect(LoadRunner.resends(503))
        #expect(!LoadRunner.resends(200))
        #expect(!LoadRunner.resends(413))
        #expect(LoadRunner.resendDelay(1) == .milliseconds(250))
        #expect(LoadRunner.resendDelay(4) == .seconds(2))
        #expect(LoadRunner.resendDelay(40) == .seconds(2))
    }
}
