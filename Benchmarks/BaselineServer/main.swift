// The comparison for the receiver benchmark: a Hummingbird route that reads the body and
// answers `success` without touching the database. Usage: BaselineServer PORT
import Hummingbird

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8090
let router = Router()
router.post("/notify/:channel") { request, _ -> String in
    _ = try await request.body.collect(upTo: 65536)
    return "success"
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
