import CallbackQueue
import Testing

/// Which partitions to make and drop, without a database.
@Suite struct PartitionPlanTests {
    typealias Range = PartitionPlan.Range
    let hour: Int64 = 3600
    let now: Int64 = 1_796_001_234

    var current: Int64 { now - now % hour }

    @Test func anEmptyQueueStartsAtTheIntervalHoldingNow() {
        #expect(PartitionPlan.toCreate(lastUpper: nil, now: now, intervalSeconds: hour, ahead: 2)
                == [Range(current, current + hour), Range(current + hour, current + 2 * hour),
                    Range(current + 2 * hour, current + 3 * hour)])
    }

    @Test func partitionsContinueFromTheLastBoundOnTheGrid() {
        #expect(PartitionPlan.toCreate(lastUpper: current + hour, now: now, intervalSeconds: hour, ahead: 2)
                == [Range(current + hour, current + 2 * hour), Range(current + 2 * hour, current + 3 * hour)])
        #expect(PartitionPlan.toCreate(lastUpper: current + 3 * hour, now: now, intervalSeconds: hour, ahead: 2).isEmpty,
                "made ahead already")
    }

    @Test func theUpgradesPartitionEndsOffTheGridAndAShortOneBringsItBack() {
        let upgraded = current + 61
        #expect(PartitionPlan.toCreate(lastUpper: upgraded, now: now, intervalSeconds: hour, ahead: 1)
                == [Range(upgraded, current + hour), Range(current + hour, current + 2 * hour)])
    }

    @Test func aLongGapIsOneCatchUpRangeNotOnePerMissedInterval() {
        let threeDaysAgo = current - 72 * hour
        let ranges = PartitionPlan.toCreate(lastUpper: threeDaysAgo, now: now, intervalSeconds: hour, ahead: 1)
        #expect(ranges == [Range(threeDaysAgo, current), Range(current, current + hour), Range(current + hour, current + 2 * hour)])
    }

    @Test func rangesAreContiguousAndEndPastTheHorizonForAnyStart() {
        for offset in stride(from: -10 * hour, through: 4 * hour, by: 997) {
            let start = current + offset
            let ranges = PartitionPlan.toCreate(lastUpper: start, now: now, intervalSeconds: hour, ahead: 2)
            guard let first = ranges.first, let last = ranges.last else {
                #expect(start >= current + 3 * hour, "nothing to make only when covered: \(offset)")
                continue
            }
            #expect(first.lower == start)
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upper == $1.lower })
            #expect(ranges.allSatisfy { $0.lower < $0.upper })
            #expect(last.upper == current + 3 * hour)
            #expect(ranges.dropFirst().allSatisfy { $0.lower % hour == 0 }, "on the grid after the first")
        }
    }

    @Test func onlyPartitionsWhollyOlderThanRetentionExpire() {
        let partitions = [Range(current - 3 * hour, current - 2 * hour), Range(current - 2 * hour, current - hour),
                          Range(current - hour, current)]
        #expect(PartitionPlan.expired(partitions, now: current, keepSeconds: hour)
                == Array(partitions.prefix(2)), "one ending exactly at the cutoff goes")
        #expect(PartitionPlan.expired(partitions, now: current - 1, keepSeconds: hour) == [partitions[0]])
    }

    @Test func partitionNamesAreTheLowerBoundInUTC() {
        #expect(QueueMaintenance.suffix(1_796_169_600) == "_p20261202t000000")
        #expect(QueueMaintenance.suffix(1_796_169_600 + 8 * 3600 + 30 * 60 + 5) == "_p20261202t083005")
    }
}
