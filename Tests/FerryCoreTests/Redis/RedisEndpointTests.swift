import Testing

@testable import FerryCommandLine
@testable import FerryCore

/// `--token-redis` URLs, websockify's TokenRedis source, and the values a token's key may hold.
@Suite("Redis endpoint and values")
struct RedisEndpointTests {
    @Test("URLs: host, port, database, password, ACL user, namespace, TLS, IPv6")
    func urls() throws {
        #expect(try RedisEndpoint.parse("redis://127.0.0.1") == RedisEndpoint(host: "127.0.0.1"))
        #expect(try RedisEndpoint.parse("redis://cache:6380/2") == RedisEndpoint(host: "cache", port: 6380, database: 2))
        #expect(try RedisEndpoint.parse("redis://:p%40ss@cache/") == RedisEndpoint(host: "cache", password: "p@ss"))
        #expect(try RedisEndpoint.parse("redis://secret@cache") == RedisEndpoint(host: "cache", password: "secret"))
        #expect(try RedisEndpoint.parse("rediss://ferry:pw@[::1]:6390/1?namespace=a%3Ab") == RedisEndpoint(host: "::1", port: 6390, usesTLS: true, user: "ferry", password: "pw", database: 1, namespace: "a:b"))
        let endpoint = try RedisEndpoint.parse("redis://:hunter2@cache:6379/0?namespace=ferry")
        #expect(endpoint.key(for: "tok") == "ferry:tok")
        #expect(RedisEndpoint(host: "h").key(for: "tok") == "tok")
        #expect(endpoint.description == "redis://:***@cache:6379/0?namespace=ferry")
        #expect(!endpoint.description.contains("hunter2"))
    }

    @Test("bad URLs: a ConfigurationError naming --token-redis, without the password")
    func badURLs() {
        let cases: [(String, String)] = [
            ("http://cache:6379", "not a redis:// or rediss:// URL"),
            ("cache:6379", "not a redis:// or rediss:// URL"),
            ("redis://", "the host is missing"),
            ("redis://:hunter2@:6379", "the host is missing"),
            ("redis://cache:0", "not a port number"),
            ("redis://cache:port", "not a port number"),
            ("redis://:hunter2@cache/db1", "the database 'db1' is not a number"),
            ("redis://cache?db=1", "unknown query parameter 'db'"),
            ("redis://cache?namespace=", "namespace is empty"),
            ("redis://[::1:6379", "no closing ]"),
            ("redis://:hun%zzter2@cache", "badly %-escaped"),
        ]
        for (text, problem) in cases {
            do {
                _ = try RedisEndpoint.parse(text)
                Issue.record("\(text) parsed")
            } catch {
                #expect(error.flag == "--token-redis", "\(error)")
                #expect(error.description.contains(problem), "\(text): \(error)")
                #expect(error.description.contains("expected redis://"), "\(error)")
                #expect(!error.description.contains("hunter2") && !error.description.contains("hun%zzter2"), "\(error)")
            }
        }
        #expect(RedisEndpoint.redact("redis://user:pw@h") == "redis://user:***@h")
        #expect(RedisEndpoint.redact("redis://pw@h") == "redis://***@h")
        #expect(RedisEndpoint.redact("redis://h:1") == "redis://h:1")
    }

    @Test("--token-redis on the command line: parsed, counts as a token source, and needs rediss:// for a CA")
    func flags() throws {
        let (configuration, _) = try FerryFlags.configuration(["--listen", "127.0.0.1:6080", "--route", "/=dynamic,auth=token", "--allow-target", "any", "--token-redis", "redis://:pw@127.0.0.1:7000/3?namespace=ns"])
        #expect(configuration.auth.redis == RedisEndpoint(host: "127.0.0.1", port: 7000, password: "pw", database: 3, namespace: "ns"))
        let caError = try #require(FerryFlags.problem(["--listen", "127.0.0.1:6080", "--route", "/=dynamic,auth=token", "--allow-target", "any", "--token-redis", "redis://127.0.0.1", "--token-redis-ca", "/etc/hostname"]))
        #expect(caError.flag == "--token-redis-ca" && caError.description.contains("rediss://"), "\(caError)")
        let urlError = try #require(FerryFlags.problem(["--listen", "127.0.0.1:6080", "--route", "/=dynamic,auth=token", "--token-redis", "redis:/x"]))
        #expect(urlError.flag == "--token-redis", "\(urlError)")
    }

    @Test("websockify's TokenRedis source becomes a --token-redis URL; the logged command hides the password")
    func websockifySource() throws {
        let cases: [(String, String)] = [
            ("cache", "redis://cache:6379/0"),
            ("cache:6380", "redis://cache:6380/0"),
            ("cache::2", "redis://cache:6379/2"),
            ("cache:::s3cret", "redis://:s3cret@cache:6379/0"),
            ("cache::::app", "redis://cache:6379/0?namespace=app"),
            ("cache:6380:1:p@ss:app", "redis://:p%40ss@cache:6380/1?namespace=app"),
            (#"cache::::"first-ns:second-ns""#, "redis://cache:6379/0?namespace=first-ns%3Asecond-ns"),
        ]
        for (source, url) in cases {
            #expect(try WebsockifyCommandLine.redisURL(source) == url, "\(source)")
            #expect(try RedisEndpoint.parse(url).key(for: "t").hasSuffix("t"))
        }
        #expect(try RedisEndpoint.parse(WebsockifyCommandLine.redisURL(#"cache::::"first-ns:second-ns""#)).namespace == "first-ns:second-ns")
        for bad in ["", ":6379", "cache:x", "cache:6379:db", "a:1:2:3:4:5"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try WebsockifyCommandLine.redisURL(bad) }
        }
        let translation = try WebsockifyCommandLine.translate(["--token-plugin", "TokenRedis", "--token-source", "127.0.0.1:6379:0:s3cret:ns", "6080"], fileExists: { _ in true })
        #expect(Self.adjacent(translation.ferryArguments, ["--token-redis", "redis://:s3cret@127.0.0.1:6379/0?namespace=ns"]))
        #expect(Self.adjacent(translation.ferryArguments, ["--route", "/=dynamic"]))
        #expect(!translation.loggableArguments.joined(separator: " ").contains("s3cret"))
        #expect(translation.loggableArguments.contains("redis://:***@127.0.0.1:6379/0?namespace=ns"))
    }

    @Test("values: host:port, websockify's JSON, unix:/path; anything else names no target")
    func values() {
        #expect(RedisTokenValue.target("127.0.0.1:5900") == .tcp(host: "127.0.0.1", port: 5900))
        #expect(RedisTokenValue.target(" vnc.internal:5901\n") == .tcp(host: "vnc.internal", port: 5901))
        #expect(RedisTokenValue.target(#"{"host": "10.0.0.7:5900"}"#) == .tcp(host: "10.0.0.7", port: 5900))
        #expect(RedisTokenValue.target(#"{"host": "10.0.0.7", "port": 5902}"#) == .tcp(host: "10.0.0.7", port: 5902))
        #expect(RedisTokenValue.target(#"{"host": "::1", "port": "5903"}"#) == .tcp(host: "::1", port: 5903))
        #expect(RedisTokenValue.target("unix:/run/vnc.sock") == .unix(path: "/run/vnc.sock"))
        #expect(RedisTokenValue.target("unix_socket:/run/vnc.sock") == .unix(path: "/run/vnc.sock"))
        #expect(RedisTokenValue.target("tls://h:443") == .tls(host: "h", port: 443))
        for bad in ["", "nohost", "h:0", "h:99999", "dynamic", "unix:relative", "{", #"{"target": "h:1"}"#, #"{"host": 5}"#, #"{"host": "h", "port": "x"}"#, "[1,2]"] {
            #expect(RedisTokenValue.target(bad) == nil, "\(bad)")
        }
        #expect(RedisTokenSource.escapeGlob("a*b?c[d]\\") == #"a\*b\?c\[d\]\\"#)
    }
}

extension RedisEndpointTests {
    /// True if `part` appears in `arguments`, in order and adjacent.
    static func adjacent(_ arguments: [String], _ part: [String]) -> Bool {
        guard part.count <= arguments.count else { return false }
        return (0...(arguments.count - part.count)).contains { Array(arguments[$0..<($0 + part.count)]) == part }
    }
}
