import CLibCrypto

/// RSA PKCS#1 v1.5 signing through the system's OpenSSL 3 (libcrypto). Every Alipay and
/// WeChat Pay callback costs the workers one signature (the signed order query), which made
/// signing their largest cost; OpenSSL signs about 2.3 times as fast as swift-crypto's
/// BoringSSL here (`swift run -c release ChannelBenchmark` prints both). Verifying, where
/// BoringSSL is the faster of the two, stays on swift-crypto.
///
/// The key is never changed after it is loaded, and OpenSSL lets threads sign with one key
/// at once, so the signer is shared freely.
final class OpenSSLSigner: @unchecked Sendable {
    enum Digest { case sha256, sha1 }

    private let key: OpaquePointer  // EVP_PKEY

    /// nil when libcrypto cannot read the DER (PKCS#1 or PKCS#8).
    init?(privateKeyDER der: [UInt8]) {
        let key: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor = buffer.baseAddress
            return d2i_AutoPrivateKey(nil, &cursor, buffer.count)
        }
        guard let key else { return nil }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    /// The signature, or nil when libcrypto fails (it does not with a key it has loaded).
    func sign(_ message: UnsafeRawBufferPointer, digest: Digest) -> [UInt8]? {
        guard let context = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, digest == .sha256 ? EVP_sha256() : EVP_sha1(), nil, key) == 1 else { return nil }
        var signature = [UInt8](repeating: 0, count: Int(EVP_PKEY_get_size(key)))
        var length = signature.count
        let signed = signature.withUnsafeMutableBufferPointer { out in
            EVP_DigestSign(context, out.baseAddress, &length, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
        }
        guard signed == 1, length <= signature.count else { return nil }
        signature.removeLast(signature.count - length)
        return signature
    }
}
