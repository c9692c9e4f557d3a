@testable import FerryCore
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// `http`: a client's first bytes up to the upgrade decision. NIO's `HTTPRequestDecoder` with the header
/// limits `ConnectionPipeline` sets, then for each request head what `HTTPHandshakeHandler` does with it:
/// the forwarding headers (``ForwardedFor``), the handshake checks (``UpgradeRequest``), the synchronous
/// part of ``UpgradePolicy/decide(head:handshake:clientIdentity:)`` (routes, Origin, client certificate
/// name, Basic credentials), where a token would be found (``PresentedToken``) and the static-file path
/// (``StaticPath``).
///
/// Input: byte 0 picks how the request is cut into reads (``Chunks``); byte 1 bit 0 picks the smallest
/// header limit Ferry allows (1 KiB) instead of the default 16 KiB; the rest is the byte stream.
enum HTTPTarget {
    static let routes: RouteTable = try! RouteTable([
        Route.parse("/=127.0.0.1:5900"),
        Route.parse("/vnc=127.0.0.1:5901,client-cn=alice"),
        Route.parse("/vnc/token=127.0.0.1:5902,auth=token"),
        Route.parse("/unix=unix:/tmp/ferry-fuzz.sock"),
        Route.parse("/connect=dynamic"),
    ])

    static let policies: [UpgradePolicy] = [
        UpgradePolicy(routes: Self.routes, originPolicy: OriginPolicy()),
        UpgradePolicy(routes: Self.routes, originPolicy: OriginPolicy(serverNames: ["relay.example", "*.example.com"])),
        UpgradePolicy(routes: Self.routes, originPolicy: OriginPolicy(allowed: ["https://example.com", "http://[::1]:8080"], onlyListed: true)),
        UpgradePolicy(
            routes: Self.routes,
            originPolicy: OriginPolicy(allowed: ["*"]),
            basicCredentials: BasicCredentials(pairs: [(user: "user", password: "secret")])
        ),
    ]

    static let identities: [ClientIdentity?] = [nil, ClientIdentity(commonName: "alice", dnsNames: ["alice.example"])]

    static let trusted: [AddressBlock] = ["10.0.0.0/8", "192.0.2.0/24", "fd00::/8"].map { AddressBlock($0)! }
    static let peers: [SocketAddress] = [
        try! SocketAddress(ipAddress: "10.1.2.3", port: 40000),
        try! SocketAddress(ipAddress: "::ffff:10.1.2.3", port: 40000),
        try! SocketAddress(unixDomainSocketPath: "/tmp/ferry-fuzz.sock"),
    ]

    static func run(_ input: [UInt8]) {
        guard input.count >= 2 else { return }
        let headerLimit = input[1] & 1 == 1 ? 1024 : 16 * 1024
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = headerLimit
        limits.maxHeaderListSize = headerLimit
        limits.maxHeaderFieldCount = 100
        let channel = EmbeddedChannel()
        try! channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits))
        )
        var bodyBytes = 0
        reading: for chunk in Chunks.split(input[2...], control: input[0]) {
            var buffer = channel.allocator.buffer(capacity: chunk.count)
            buffer.writeBytes(chunk)
            do {
                try channel.writeInbound(buffer)
            } catch {
                break reading  // a malformed request: Ferry answers 400 or 431 and closes
            }
            while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
                switch part {
                case .head(let head):
                    Self.examine(head)
                case .body(let body):
                    bodyBytes += body.readableBytes
                    require(bodyBytes <= input.count, "more body bytes than input bytes")
                case .end:
                    break
                }
            }
        }
        _ = try? channel.finish()
    }

    static func examine(_ head: HTTPRequestHead) {
        for peer in Self.peers {
            for trustsUnix in [false, true] {
                if let client = ForwardedFor.client(peer: peer, headers: head.headers, trusted: Self.trusted, trustsUnixSocketPeers: trustsUnix) {
                    // HTTPHandshakeHandler then makes an address of it.
                    _ = try? SocketAddress(ipAddress: client, port: 0)
                }
            }
        }
        for (cookie, fromHost) in [("ferry_token", false), (nil, true)] as [(String?, Bool)] {
            if let token = PresentedToken.find(in: head, cookieName: cookie, fromHost: fromHost) {
                require(!token.value.isEmpty, "an empty token was found")
                require(token.fingerprint.utf8.count == 12, "a fingerprint is not 12 hex digits")
            }
        }
        _ = StaticPath.resolve(head.uri)

        let request = UpgradeRequest(head)
        trace("http: \(head.method) \(head.uri.debugDescription) \(head.version): \(request)")
        guard case .upgrade(let handshake) = request else { return }
        require(handshake.subprotocol == nil || handshake.subprotocol == UpgradeRequest.binarySubprotocol, "answered subprotocol \(handshake.subprotocol!)")
        for policy in Self.policies {
            for identity in Self.identities {
                let decision = Result { () throws(HandshakeRejection) in try policy.decide(head: head, handshake: handshake, clientIdentity: identity) }
                trace("http:   policy \(policy.originPolicy.onlyListed ? "only-listed" : policy.basicCredentials != nil ? "basic" : policy.originPolicy.serverNames.isEmpty ? "default" : "server-names"), certificate \(identity != nil): \(decision.map { "\($0.route.path) -> \($0.target)" })")
                if case .success(let plan) = decision {
                    require(plan.route.matches(Substring(head.uri.prefix { $0 != "?" })), "plan for route \(plan.route.path) does not match \(head.uri)")
                    if !plan.route.options.clientNames.isEmpty {
                        require(identity != nil, "route \(plan.route.path) needs a certificate but was granted without one")
                    }
                }
            }
        }
    }
}
