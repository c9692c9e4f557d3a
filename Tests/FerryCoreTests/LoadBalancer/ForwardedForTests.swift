import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing

@testable import FerryCore

extension OperationsTests {
    /// `X-Forwarded-For` / `Forwarded`, believed only from trusted peers, and the address blocks that
    /// say who is trusted.
    @Suite("Forwarding headers and address blocks")
    struct ForwardedForTests {
        static let trusted = [AddressBlock("10.0.0.0/8")!, AddressBlock("2001:db8:ffff::/48")!]
        static let proxy = PROXYBytes.address("10.0.0.1")
        static let stranger = PROXYBytes.address("198.51.100.99")

        static func headers(_ pairs: (String, String)...) -> HTTPHeaders {
            HTTPHeaders(pairs)
        }

        // MARK: ForwardedFor.client

        @Test("an untrusted peer's forwarding headers are ignored")
        func untrustedPeer() {
            let xff = Self.headers(("X-Forwarded-For", "203.0.113.5"))
            let forwarded = Self.headers(("Forwarded", "for=203.0.113.5"))
            #expect(ForwardedFor.client(peer: Self.stranger, headers: xff, trusted: Self.trusted) == nil)
            #expect(ForwardedFor.client(peer: Self.stranger, headers: forwarded, trusted: Self.trusted) == nil)
            // No trusted proxies at all: nobody is believed, not even the loopback.
            #expect(ForwardedFor.client(peer: PROXYBytes.address("127.0.0.1"), headers: xff, trusted: []) == nil)
            // The trusted peer is believed with the same headers.
            #expect(ForwardedFor.client(peer: Self.proxy, headers: xff, trusted: Self.trusted) == "203.0.113.5")
        }

        @Test("X-Forwarded-For is walked from the right past trusted hops")
        func xffRightmostUntrusted() {
            let chain = Self.headers(("X-Forwarded-For", "192.0.2.1, 203.0.113.7, 10.9.8.7"))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: chain, trusted: Self.trusted) == "203.0.113.7")

            // The same chain over two header lines.
            let split = Self.headers(("X-Forwarded-For", "192.0.2.1"), ("X-Forwarded-For", "203.0.113.7, 10.9.8.7"))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: split, trusted: Self.trusted) == "203.0.113.7")

            // Spoofed left entries do not matter: the hop nearest the proxy wins.
            let spoofed = Self.headers(("X-Forwarded-For", "1.1.1.1,203.0.113.8"))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: spoofed, trusted: Self.trusted) == "203.0.113.8")

            // IPv6 hops, with and without brackets/ports; a trusted IPv6 hop is skipped.
            let v6 = Self.headers(("X-Forwarded-For", "2001:db8::5, 2001:db8:ffff::1"))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: v6, trusted: Self.trusted) == "2001:db8::5")
            let withPort = Self.headers(("X-Forwarded-For", "203.0.113.9:5555"))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: withPort, trusted: Self.trusted) == "203.0.113.9")
        }

        @Test("a chain of only trusted hops names no client")
        func allTrusted() {
            let chain = Self.headers(("X-Forwarded-For", "10.1.1.1, 10.2.2.2"))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: chain, trusted: Self.trusted) == nil)
            #expect(ForwardedFor.client(peer: Self.proxy, headers: HTTPHeaders(), trusted: Self.trusted) == nil)
        }

        @Test("Forwarded: quoted bracketed IPv6 with port, and for= among other parameters")
        func forwardedHeader() {
            let v6 = Self.headers(("Forwarded", #"for="[2001:db8::1]:4711""#))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: v6, trusted: Self.trusted) == "2001:db8::1")

            let v4 = Self.headers(("Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: v4, trusted: Self.trusted) == "192.0.2.60")

            let list = Self.headers(("Forwarded", #"for=192.0.2.43, For="[2001:db8:cafe::17]", for=10.0.0.7"#))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: list, trusted: Self.trusted) == "2001:db8:cafe::17")

            // Forwarded is preferred to X-Forwarded-For when both are there.
            let both = Self.headers(("Forwarded", "for=192.0.2.61"), ("X-Forwarded-For", "192.0.2.62"))
            #expect(ForwardedFor.client(peer: Self.proxy, headers: both, trusted: Self.trusted) == "192.0.2.61")
        }

        @Test("garbage entries name no client, and nothing to the left of them is believed")
        func garbage() {
            for value in ["unknown", "not an address", "", " , ", "192.0.2.1, garbage", "256.1.1.1", "[::1", "192.0.2.1:80:90"] {
                let headers = Self.headers(("X-Forwarded-For", value))
                #expect(ForwardedFor.client(peer: Self.proxy, headers: headers, trusted: Self.trusted) == nil, "X-Forwarded-For: \(value)")
            }
            for value in ["for=unknown", "for=_hidden", #"for="_gazonk""#, "for=192.0.2.1, for=unknown"] {
                let headers = Self.headers(("Forwarded", value))
                #expect(ForwardedFor.client(peer: Self.proxy, headers: headers, trusted: Self.trusted) == nil, "Forwarded: \(value)")
            }
        }

        @Test("a Unix-socket peer is a trusted proxy only with --trusted-proxy unix; TCP peers by address as before")
        func unixSocketPeer() throws {
            let unix = try SocketAddress(unixDomainSocketPath: "/tmp/ferry-test.sock")
            let xff = Self.headers(("X-Forwarded-For", "203.0.113.5, 10.0.0.9"))
            #expect(ForwardedFor.client(peer: unix, headers: xff, trusted: Self.trusted, trustsUnixSocketPeers: false) == nil)
            #expect(ForwardedFor.client(peer: unix, headers: xff, trusted: Self.trusted, trustsUnixSocketPeers: true) == "203.0.113.5")
            // No address blocks at all: the nearest hop is the client.
            #expect(ForwardedFor.client(peer: unix, headers: xff, trusted: [], trustsUnixSocketPeers: true) == "10.0.0.9")
            // The flag does not make TCP peers trusted.
            let stranger = try SocketAddress(ipAddress: "198.51.100.99", port: 1)
            #expect(ForwardedFor.client(peer: stranger, headers: xff, trusted: Self.trusted, trustsUnixSocketPeers: true) == nil)
            let proxy = try SocketAddress(ipAddress: "10.0.0.1", port: 1)
            #expect(ForwardedFor.client(peer: proxy, headers: xff, trusted: Self.trusted, trustsUnixSocketPeers: false) == "203.0.113.5")
        }

        @Test("a trusted peer seen as IPv4-mapped IPv6 (dual-stack listener) is still trusted")
        func mappedPeer() {
            let mapped = PROXYBytes.address("::ffff:10.0.0.1")
            #expect(mapped.count == 16)
            let headers = Self.headers(("X-Forwarded-For", "203.0.113.5"))
            #expect(ForwardedFor.client(peer: mapped, headers: headers, trusted: Self.trusted) == "203.0.113.5")
        }

        // MARK: AddressBlock

        @Test("AddressBlock parses IPv4/IPv6 blocks and single addresses, and refuses the rest")
        func addressBlockParsing() throws {
            let v4 = try #require(AddressBlock("10.0.0.0/8"))
            #expect(v4.bytes == [10, 0, 0, 0])
            #expect(v4.prefix == 8)
            #expect(v4.description == "10.0.0.0/8")

            let single = try #require(AddressBlock("192.0.2.1"))
            #expect(single.prefix == 32)
            let single6 = try #require(AddressBlock("::1"))
            #expect(single6.prefix == 128)
            #expect(single6.bytes.count == 16)
            #expect(try #require(AddressBlock("fd00::/8")).description == "fd00::/8")
            #expect(AddressBlock("0.0.0.0/0")?.prefix == 0)

            for bad in ["", "/8", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/x", "example.com", "10.0.0/8", "10.0.0.256/8", "10.0.0.0/8/8"] {
                #expect(AddressBlock(bad) == nil, "\(bad)")
            }
            // A block whose prefix length was left out after the slash is a typo, not a single host.
            #expect(AddressBlock("10.0.0.0/") == nil, "got \(AddressBlock("10.0.0.0/").map(\.description) ?? "nil")")
        }

        @Test("AddressBlock.contains: prefix boundaries, families, IPv4-mapped IPv6")
        func addressBlockContains() throws {
            let ten = try #require(AddressBlock("10.0.0.0/8"))
            #expect(ten.contains(PROXYBytes.address("10.255.1.2")))
            #expect(!ten.contains(PROXYBytes.address("11.0.0.0")))
            #expect(!ten.contains(PROXYBytes.address("9.255.255.255")))

            let odd = try #require(AddressBlock("192.168.0.0/23"))
            #expect(odd.contains(PROXYBytes.address("192.168.1.255")))
            #expect(!odd.contains(PROXYBytes.address("192.168.2.0")))

            let host = try #require(AddressBlock("127.0.0.1/32"))
            #expect(host.contains(PROXYBytes.address("127.0.0.1")))
            #expect(!host.contains(PROXYBytes.address("127.0.0.2")))

            // IPv4-mapped IPv6 addresses are compared as IPv4; other IPv6 addresses never match IPv4 blocks.
            #expect(ten.contains(PROXYBytes.address("::ffff:10.1.2.3")))
            #expect(!ten.contains(PROXYBytes.address("::ffff:11.1.2.3")))
            #expect(!ten.contains(PROXYBytes.address("::10.1.2.3")), "IPv4-compatible (not mapped) is not IPv4")
            #expect(!ten.contains(PROXYBytes.address("64:ff9b::a01:203")), "NAT64 is not IPv4-mapped")
            #expect(host.contains(PROXYBytes.address("::ffff:127.0.0.1")))

            let v6 = try #require(AddressBlock("2001:db8::/32"))
            #expect(v6.contains(PROXYBytes.address("2001:db8:1234::1")))
            #expect(!v6.contains(PROXYBytes.address("2001:db9::1")))
            #expect(!v6.contains(PROXYBytes.address("32.1.13.184")), "an IPv4 address never matches an IPv6 block")

            let any4 = try #require(AddressBlock("0.0.0.0/0"))
            #expect(any4.contains(PROXYBytes.address("203.0.113.1")))
            #expect(!any4.contains(PROXYBytes.address("2001:db8::1")))
            let any6 = try #require(AddressBlock("::/0"))
            #expect(any6.contains(PROXYBytes.address("2001:db8::1")))

            // Malformed inputs (wrong byte counts) never match.
            #expect(!ten.contains([]))
            #expect(!ten.contains([10, 0, 0]))
        }

        @Test("Readiness: starting, ready, draining, and the observer sees each change")
        func readinessStates() {
            let readiness = Readiness()
            #expect(readiness.state == .starting)
            let seen = NIOLockedValueBox<[Readiness.State]>([])
            readiness.observe { state in seen.withLockedValue { $0.append(state) } }
            readiness.set(.ready)
            readiness.set(.draining)
            #expect(readiness.state == .draining)
            #expect(seen.withLockedValue { $0 } == [.ready, .draining])
        }
    }
}
