import Channels
import Foundation
import PayhookConfig
import Testing

/// Key files read for `channels:`: every error names the YAML key and the file, never the key.
@Suite struct KeyLoadingTests {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("ChannelsTests/Fixtures")

    static func path(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    static var certificateSerial: String {
        get throws {
            let data = try Data(contentsOf: fixtures.appendingPathComponent("wechat_serials.json"))
            return (try JSONSerialization.jsonObject(with: data) as! [String: Any])["certificate_serial"] as! String
        }
    }

    func loadError(_ channel: String) throws -> ConfigError? {
        let configuration = try PayhookConfiguration.parse(yaml: "database: {url: x}\nchannels: [\(channel)]")
        do {
            _ = try configuration.loadChannels()
            return nil
        } catch {
            return error
        }
    }

    func alipay(_ extra: String = "", publicKey: String = "alipay_public.pem") -> String {
        """
        {id: ali, type: alipay, app_id: "1", alipay_public_key_file: "\(Self.path(publicKey))",
         app_private_key_file: "\(Self.path("app_private_pkcs1.pem"))", gateway_url: "http://127.0.0.1:1/", insecure_http: true\(extra)}
        """
    }

    func wechat(platform: String, apiV3Key: String = "wechat_apiv3.key") -> String {
        """
        {id: wx, type: wechatpay_v3, mchid: "1", appid: a, apiv3_key_file: "\(Self.path(apiV3Key))",
         platform_public_key_files: {\(platform)}, merchant_private_key_file: "\(Self.path("wechat_merchant_private.pem"))",
         merchant_serial_no: "1", api_base_url: "https://127.0.0.1:1/"}
        """
    }

    @Test func keyFilesNameTheFileAndNeverTheKey() throws {
        do {
            _ = try KeyFiles.publicKey("/nonexistent/alipay_public.pem")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "/nonexistent/alipay_public.pem: cannot be read (missing or no permission)")
        }
        do {
            _ = try KeyFiles.publicKey(Self.path("alipay_private_pkcs8.pem"))
            Issue.record("expected an error")
        } catch {
            #expect(error.file == Self.path("alipay_private_pkcs8.pem"))
            #expect(!error.description.contains("MII"))
        }
        #expect(try KeyFiles.publicKey(Self.path("alipay_public.pem")).keySizeInBits == 2048)
        #expect(try KeyFiles.secret(Self.path("points.secret")).byteCount > 0)
    }

    @Test func everyChannelLoadsFromItsFiles() throws {
        #expect(try loadError(alipay()) == nil)
        let serial = try Self.certificateSerial
        #expect(try loadError(wechat(platform: "\"\(serial)\": \"\(Self.path("wechat_platform_cert.pem"))\"")) == nil)
    }

    @Test func channelErrorsNameTheKeyAndTheFile() throws {
        let notAKey = try #require(try loadError(alipay(publicKey: "points.secret")))
        #expect(notAKey.key == "channels[0].alipay_public_key_file")
        #expect(notAKey.problem.contains("points.secret") && !notAKey.description.contains("points-test-secret"))

        // A bad allowlist entry is refused as the file is parsed (the receiver needs the networks), before any key is read.
        #expect(throws: ConfigError(key: "channels[0].allowed_ips[1]", problem: "'10.0.0.0/40' is not an IPv4 or IPv6 CIDR")) {
            try PayhookConfiguration.parse(yaml: "database: {url: x}\nchannels: [\(alipay(", allowed_ips: [127.0.0.1/32, 10.0.0.0/40]"))]")
        }

        let notABool = try #require(try loadError(alipay(", allow_sign_type_rsa: maybe")))
        #expect(notABool.key == "channels[0].allow_sign_type_rsa")

        let serial = try #require(try loadError(wechat(platform: "ABCDEF: \"\(Self.path("wechat_platform_cert.pem"))\"")))
        #expect(serial.key == "channels[0].platform_public_key_files[ABCDEF]")
        let certificateSerial = try Self.certificateSerial
        #expect(serial.problem.contains("wechat_platform_cert.pem") && serial.problem.contains(certificateSerial))

        let shortKey = try #require(try loadError(wechat(
            platform: "PUB_KEY_ID_1: \"\(Self.path("wechat_pubkey_id_public.pem"))\"", apiV3Key: "points.secret")))
        #expect(shortKey.key == "channels[0].apiv3_key_file" && shortKey.problem.contains("points.secret"))
        #expect(!shortKey.description.contains("points-test-secret"))
    }

    /// TLS to the channels: an API URL must be https:// unless the channel says
    /// `insecure_http: true`; a `ca_file` must read as PEM certificates. Errors name the key.
    @Test func channelAPIURLsMustBeHTTPSUnlessInsecureHTTP() throws {
        let privateKey = "app_private_key_file: \"\(Self.path("app_private_pkcs1.pem"))\""
        func yaml(_ settings: String) -> String {
            "database: {url: x}\nchannels: [{id: ali, type: alipay, app_id: \"1\", alipay_public_key_file: \"\(Self.path("alipay_public.pem"))\", \(privateKey), \(settings)}]"
        }
        // A production-looking channel over plain http is refused as the file is parsed.
        let plain = #expect(throws: ConfigError.self) {
            try PayhookConfiguration.parse(yaml: yaml("gateway_url: \"http://openapi.alipay.com/gateway.do\""))
        }
        #expect(plain?.key == "channels[0].gateway_url")
        #expect(plain?.problem.contains("https://") == true && plain?.problem.contains("insecure_http") == true)
        // Loopback is no exception: only insecure_http allows http.
        #expect(throws: ConfigError.self) {
            try PayhookConfiguration.parse(yaml: yaml("gateway_url: \"http://127.0.0.1:8090/alipay/gateway.do\""))
        }
        let ftp = #expect(throws: ConfigError.self) {
            try PayhookConfiguration.parse(yaml: yaml("gateway_url: \"ftp://openapi.alipay.com/\", insecure_http: true"))
        }
        #expect(ftp?.key == "channels[0].gateway_url")
        let wechat = #expect(throws: ConfigError.self) {
            try PayhookConfiguration.parse(yaml: """
                database: {url: x}
                channels: [{id: wx, type: wechatpay_v3, mchid: "1", appid: a, apiv3_key_file: k, merchant_private_key_file: k,
                            merchant_serial_no: "1", api_base_url: "http://api.mch.weixin.qq.com", platform_public_key_files: {A: k}}]
                """)
        }
        #expect(wechat?.key == "channels[0].api_base_url")
        let points = #expect(throws: ConfigError.self) {
            try PayhookConfiguration.parse(yaml: """
                database: {url: x}
                channels: [{id: p, type: points, partner_id: s, hmac_secret_file: k, api_base_url: "http://points.example/api"}]
                """)
        }
        #expect(points?.key == "channels[0].api_base_url")

        let insecure = try PayhookConfiguration.parse(yaml: yaml("gateway_url: \"http://127.0.0.1:8090/gateway.do\", insecure_http: true"))
        #expect(insecure.channels[0].insecureHTTP)
        _ = try insecure.loadClients()
        let secure = try PayhookConfiguration.parse(yaml: yaml("gateway_url: \"https://openapi.alipay.com/gateway.do\""))
        #expect(!secure.channels[0].insecureHTTP && secure.channels[0].caFile == nil)
        _ = try secure.loadClients()
    }

    @Test func caFileMustBeReadablePEMCertificates() throws {
        func load(caFile: String) throws -> ConfigError? {
            let configuration = try PayhookConfiguration.parse(yaml: """
                database: {url: x}
                channels: [\(alipay(", ca_file: \"\(caFile)\""))]
                """)
            #expect(configuration.channels[0].caFile == caFile)
            do {
                _ = try configuration.loadClients()
                return nil
            } catch {
                return error
            }
        }
        let missing = try #require(try load(caFile: "/nonexistent/ca.pem"))
        #expect(missing.key == "channels[0].ca_file" && missing.problem.contains("/nonexistent/ca.pem"))
        // A key file is no CA bundle.
        let notCertificates = try #require(try load(caFile: Self.path("alipay_public.pem")))
        #expect(notCertificates.key == "channels[0].ca_file")
        // A certificate is.
        #expect(try load(caFile: Self.path("wechat_platform_cert.pem")) == nil)
    }
}
