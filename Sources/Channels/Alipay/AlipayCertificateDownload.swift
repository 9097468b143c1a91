public import Foundation
public import PayhookCore

/// Certificate rotation (从网关下载新证书): an answer naming an `alipay_cert_sn` with no
/// trusted key makes the client download that certificate with
/// `alipay.open.app.alipaycert.download` and check it (``AlipayCertificateMode/trust``)
/// before the answer is read. Pure steps; `ChannelClients` sends the request.
extension AlipayAdapter {
    public static let certificateDownloadMethod = "alipay.open.app.alipaycert.download"

    /// In certificate mode, the SN a 200 answer names that has no trusted key yet; nil in
    /// public-key mode, for a known SN, or for an answer naming none.
    public func unknownCertificateSN(in response: ChannelResponse) -> String? {
        guard let mode = configuration.certificateMode, response.status == 200 else { return nil }
        let sn: String? = response.body.withUnsafeBufferPointer { JSONObjectView($0)?["alipay_cert_sn"]?.string }
        guard let sn, !sn.isEmpty, mode.publicKey(sn: sn) == nil else { return nil }
        return sn
    }

    /// The signed download request for `sn`. An SN refused in the last
    /// ``AlipayCertificateMode/refusalMemory`` seconds fails again at once, unasked.
    public func certificateDownloadRequest(sn: String, now: Date) throws(QueryError) -> ChannelRequest {
        guard let mode = configuration.certificateMode else { throw .permanent(.invalidRequest, "alipay_cert_mode is off") }
        if let refusal = mode.refused(sn: sn, now: now) { throw refusal }
        let biz = JSONValue.object(["alipay_cert_sn": .string(sn)])
        let pairs = try AlipayGateway.signedParameters(
            method: Self.certificateDownloadMethod, bizContent: biz, configuration: configuration, now: now)
        return AlipayGateway.post(pairs, configuration: configuration)
    }

    /// Reads the download's answer: `alipay_cert_content` (base64 of the PEM) must hold the
    /// certificate `sn` names, within its dates and chaining to the root bundle; the answer's
    /// signature, when present, must verify with a trusted key (or the new certificate's,
    /// when it names that one). Only then is the key kept. Every failure is transient: the
    /// query that needed the certificate is retried later. A refused certificate is
    /// remembered (``AlipayCertificateMode/refusalMemory``) and never used.
    public func acceptDownloadedCertificate(_ response: ChannelResponse, sn: String, now: Date) async throws(QueryError) {
        guard let mode = configuration.certificateMode else { throw .permanent(.invalidRequest, "alipay_cert_mode is off") }
        do throws(QueryError) {
            let key = try await downloadedKey(response, sn: sn, mode: mode, now: now)
            mode.remember(sn: sn, key: key)
        } catch {
            let failure = QueryError(.transient, error.code, "certificate download: \(error.detail)")
            if error.code == .certificateUntrusted || error.code == .certificateExpired || error.code == .badSignature {
                mode.rememberRefusal(sn: sn, error: failure, now: now)
            }
            throw failure
        }
    }

    private func downloadedKey(_ response: ChannelResponse, sn: String, mode: AlipayCertificateMode,
                               now: Date) async throws(QueryError) -> RSAPublicKey {
        guard response.status == 200 else { throw .transient(.httpStatus, "HTTP \(response.status)") }
        let node = AlipayGateway.responseNode(method: Self.certificateDownloadMethod)
        let signed = try AlipayGateway.signedNode(response, node: node)
        guard let body = try? JSONValue.parse(response.body[signed.nodeRange]) else {
            throw .transient(.malformedResponse, "not JSON")
        }
        let code = body["code"]?.stringValue ?? ""
        guard code == "10000" else {
            throw AlipayGateway.failure(AlipayGateway.Answer(
                body: body, code: code, subCode: body["sub_code"]?.stringValue ?? "", verified: false))
        }
        guard let content = body["alipay_cert_content"]?.stringValue, let pem = AlipaySignature.decodeBase64(content),
            let text = Bytes.utf8String(pem)
        else { throw .transient(.malformedResponse, "alipay_cert_content") }
        let key = try await mode.trust(downloadedPEM: text, sn: sn, now: now)
        if let signature = signed.signature {
            let verifier: RSAPublicKey
            switch signed.certSN {
            case sn?: verifier = key
            case nil, ""?: verifier = mode.configuredKey
            case let other?:
                guard let known = mode.publicKey(sn: other) else {
                    throw .transient(.unknownKey, "the download answer names alipay_cert_sn \(Rejection.quoted(other))")
                }
                verifier = known
            }
            guard let bytes = AlipaySignature.decodeBase64(signature),
                verifier.isValidSHA256Signature(bytes, for: response.body[signed.nodeRange])
            else { throw .transient(.badSignature, "download answer signature") }
        }
        return key
    }
}
