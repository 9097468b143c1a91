import Yams

/// The YAML document as a plain tree, with environment overrides applied, read with key
/// paths so every error can name its key.
indirect enum ConfigNode: Sendable, Equatable {
    case map([(key: String, value: ConfigNode)])
    case list([ConfigNode])
    case scalar(String)
    case null

    static func == (lhs: ConfigNode, rhs: ConfigNode) -> Bool {
        switch (lhs, rhs) {
        case (.map(let a), .map(let b)): a.map(\.key) == b.map(\.key) && a.map(\.value) == b.map(\.value)
        case (.list(let a), .list(let b)): a == b
        case (.scalar(let a), .scalar(let b)): a == b
        case (.null, .null): true
        default: false
        }
    }

    static func parse(yaml: String) throws(ConfigError) -> ConfigNode {
        let document: Node?
        do {
            document = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(key: "(document)", problem: "not valid YAML: \(error)")
        }
        guard let document else { return .map([]) }
        return try convert(document, path: "")
    }

    private static func convert(_ node: Node, path: String) throws(ConfigError) -> ConfigNode {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string) { return .null }
            return .scalar(scalar.string)
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for (index, item) in sequence.enumerated() {
                items.append(try convert(item, path: "\(path)[\(index)]"))
            }
            return .list(items)
        case .mapping(let mapping):
            var pairs: [(key: String, value: ConfigNode)] = []
            for (key, value) in mapping {
                guard let name = key.scalar?.string else {
                    throw ConfigError(key: path.isEmpty ? "(document)" : path, problem: "keys must be plain strings")
                }
                let childPath = path.isEmpty ? name : "\(path).\(name)"
                if pairs.contains(where: { $0.key == name }) {
                    throw ConfigError(key: childPath, problem: "given twice")
                }
                pairs.append((name, try convert(value, path: childPath)))
            }
            return .map(pairs)
        @unknown default:
            throw ConfigError(key: path, problem: "is of an unsupported YAML kind")
        }
    }

    subscript(key: String) -> ConfigNode? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    /// Sets a scalar at `section.key`, creating the section when missing.
    func setting(section: String, key: String, to value: String) -> ConfigNode {
        guard case .map(var top) = self else { return self }
        var inner: [(key: String, value: ConfigNode)] = []
        if let index = top.firstIndex(where: { $0.key == section }), case .map(let existing) = top[index].value {
            inner = existing
            top.remove(at: index)
        }
        inner.removeAll { $0.key == key }
        inner.append((key, .scalar(value)))
        top.append((section, .map(inner)))
        return .map(top)
    }
}

/// Reads one mapping, remembering the path for error messages and refusing unknown keys.
struct ConfigReader {
    let node: ConfigNode
    let path: String
    private var known: Set<String> = []

    init(_ node: ConfigNode?, path: String) throws(ConfigError) {
        switch node {
        case nil, .null?: self.node = .map([])
        case .map?: self.node = node!
        default: throw ConfigError(key: path, problem: "must be a mapping")
        }
        self.path = path
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func raw(_ key: String) -> ConfigNode? {
        known.insert(key)
        if case .null? = node[key] { return nil }
        return node[key]
    }

    mutating func string(_ key: String) throws(ConfigError) -> String? {
        switch raw(key) {
        case nil: return nil
        case .scalar(let value)?: return value
        default: throw ConfigError(key: keyPath(key), problem: "must be a string")
        }
    }

    mutating func requiredString(_ key: String) throws(ConfigError) -> String {
        guard let value = try string(key), !value.isEmpty else {
            throw ConfigError(key: keyPath(key), problem: "is required")
        }
        return value
    }

    mutating func integer(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let text = try string(key) else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigError(key: keyPath(key), problem: "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    mutating func number(_ key: String, default fallback: Double, range: ClosedRange<Double>) throws(ConfigError) -> Double {
        guard let text = try string(key) else { return fallback }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            throw ConfigError(key: keyPath(key), problem: "must be a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    mutating func bool(_ key: String, default fallback: Bool) throws(ConfigError) -> Bool {
        guard let text = try string(key) else { return fallback }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw ConfigError(key: keyPath(key), problem: "must be true or false")
        }
    }

    mutating func stringList(_ key: String) throws(ConfigError) -> [String] {
        switch raw(key) {
        case nil: return []
        case .list(let items)?:
            var values: [String] = []
            for (index, item) in items.enumerated() {
                guard case .scalar(let value) = item else {
                    throw ConfigError(key: "\(keyPath(key))[\(index)]", problem: "must be a string")
                }
                values.append(value)
            }
            return values
        default: throw ConfigError(key: keyPath(key), problem: "must be a list")
        }
    }

    mutating func stringMap(_ key: String) throws(ConfigError) -> [String: String]? {
        switch raw(key) {
        case nil: return nil
        case .map(let pairs)?:
            var values: [String: String] = [:]
            for pair in pairs {
                guard case .scalar(let value) = pair.value else {
                    throw ConfigError(key: "\(keyPath(key)).\(pair.key)", problem: "must be a string")
                }
                values[pair.key] = value
            }
            return values
        default: throw ConfigError(key: keyPath(key), problem: "must be a mapping")
        }
    }

    /// Refuses keys nobody asked for: a typo in a payment config must not pass silently.
    func rejectUnknownKeys() throws(ConfigError) {
        guard case .map(let pairs) = node else { return }
        if let unknown = pairs.first(where: { !known.contains($0.key) }) {
            throw ConfigError(key: keyPath(unknown.key), problem: "is not a known setting")
        }
    }
}
