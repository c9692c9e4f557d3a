import NIOSSL

/// Who a client certificate names, as verified by the TLS handshake: its common name and DNS subject
/// alternative names. Only the TLS layer sets this; request headers never do.
public struct ClientIdentity: Sendable, Equatable {
    public var commonName: String?
    public var dnsNames: [String]

    public init(commonName: String?, dnsNames: [String]) {
        self.commonName = commonName
        self.dnsNames = dnsNames
    }

    init(certificate: NIOSSLCertificate) {
        self.commonName = certificate.subjectName.last { $0.type == .commonName }?.value
        self.dnsNames = certificate._subjectAlternativeNames()
            .filter { $0.nameType == .dnsName }
            .map { String(decoding: $0.contents, as: UTF8.self) }
    }

    /// True if the common name or a DNS name is one of `allowed`.
    public func isAllowed(by allowed: Set<String>) -> Bool {
        if let commonName, allowed.contains(commonName) { return true }
        return self.dnsNames.contains { allowed.contains($0) }
    }
}
