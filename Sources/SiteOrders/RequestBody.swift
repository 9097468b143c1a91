import Channels

/// The site API's request bodies: one JSON object of known fields, each at most once.
enum RequestBody {
    static func object(_ body: [UInt8], fields: Set<String>) throws(OrderError) -> JSONValue {
        guard let json = try? JSONValue.parse(body) else { throw .invalidJSON("the body is not JSON") }
        guard case .object(let members) = json else { throw .invalidJSON("the body must be a JSON object") }
        var seen: Set<String> = []
        for member in members {
            guard fields.contains(member.key) else { throw .unknownField(member.key) }
            guard seen.insert(member.key).inserted else { throw .invalidField(member.key, "appears twice") }
        }
        return json
    }
}
