// The comparison for the receiver benchmark: a Hummingbird route that reads the body and
// answers `success` without touching the database. With WAIT_MS it first sleeps that long,
// to show what a request that waits (as one waiting for its commit does) costs the server.
// Usage: BaselineServer PORT [WAIT_MS]
import Hummingbird

let arguments = CommandLine.arguments.dropFirst()
let port = arguments.first.flatMap { Int($0) } ?? 8090
let wait = arguments.dropFirst().first.flatMap { Int($0) } ?? 0
let router = Router()
router.post("/notify/:channel") { request, _ -> String in
    _ = try await request.body.collect(upTo: 65536)
    if wait > 0 { try await Task.sleep(for: .milliseconds(wait)) }
    return "success"
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
