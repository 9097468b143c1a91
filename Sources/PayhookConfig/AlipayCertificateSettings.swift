/// `alipay_cert_mode` and its three files, checked when the file is parsed (the files are
/// read by `load()`).
extension ChannelSettings {
    static let alipayCertificateKeys = ["alipay_cert_mode", "app_cert_file", "alipay_cert_file", "alipay_root_cert_file"]

    /// `alipay_cert_mode: true` needs the three certificate files and refuses
    /// `alipay_public_key_file` (one source of Alipay's key, not two); public-key mode needs
    /// `alipay_public_key_file` and refuses the certificate files, so a half-done switch to
    /// certificate mode is an error rather than a channel silently left in the old mode.
    static func checkAlipayMode(_ settings: [String: String], path: String) throws(ConfigError) {
        let files = alipayCertificateKeys.dropFirst()
        func present(_ key: String) -> Bool { settings[key].map { !$0.isEmpty } ?? false }
        switch settings["alipay_cert_mode"] {
        case "true":
            for key in files where !present(key) {
                throw ConfigError(key: "\(path).\(key)", problem: "is required with alipay_cert_mode: true")
            }
            if present("alipay_public_key_file") {
                throw ConfigError(key: "\(path).alipay_public_key_file",
                                  problem: "is not used with alipay_cert_mode: true (alipay_cert_file holds Alipay's key)")
            }
        case nil, "false":
            guard present("alipay_public_key_file") else {
                throw ConfigError(key: "\(path).alipay_public_key_file", problem: "is required")
            }
            for key in files where settings[key] != nil {
                throw ConfigError(key: "\(path).\(key)", problem: "needs alipay_cert_mode: true")
            }
        default:
            throw ConfigError(key: "\(path).alipay_cert_mode", problem: "must be true or false")
        }
    }

    /// Whether this Alipay channel is in certificate mode (checked by ``checkAlipayMode``).
    var alipayCertificateMode: Bool { settings["alipay_cert_mode"] == "true" }
}
