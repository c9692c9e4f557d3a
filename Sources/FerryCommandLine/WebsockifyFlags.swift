import FerryCore

/// websockify's own options: which take a value, which do not, the short ones, those Ferry cannot
/// honour (with the Ferry way to get the same), and its usage text.
extension WebsockifyCommandLine {
    /// websockify's options that take a value.
    static let valued: Set<String> = [
        "--record", "--timeout", "--idle-timeout", "--cert", "--key", "--key-password", "--cafile", "--ssl-version",
        "--ssl-ciphers", "--unix-listen", "--unix-listen-mode", "--unix-target", "--web", "--wrap-mode", "--target-config",
        "--token-plugin", "--token-source", "--auth-plugin", "--auth-source", "--heartbeat", "--log-file", "--syslog",
    ]

    /// websockify's options that take none.
    static let switches: Set<String> = [
        "--verbose", "--traffic", "--daemon", "--run-once", "--ssl-only", "--ssl-target", "--verify-client", "--inetd",
        "--web-auth", "--prefer-ipv6", "--libserver", "--host-token", "--legacy-syslog", "--file-only", "--help",
    ]

    static let shortSwitches: [Character: String] = ["v": "--verbose", "D": "--daemon", "6": "--prefer-ipv6", "h": "--help"]

    /// Flags websockify has and Ferry does not, with the Ferry way to get the same.
    static let unsupported: [String: String] = [
        "--key-password": "Ferry reads unencrypted keys only; decrypt it once (openssl pkey -in KEY -out KEY.plain) and give --key KEY.plain",
        "--inetd": "Ferry opens its own listener; give [addr:]port, or --unix-listen FILE",
        "--syslog": "Ferry logs to standard error (collected by journald, Docker or Kubernetes); add --log-file FILE for a file",
        "--legacy-syslog": "Ferry logs to standard error (collected by journald, Docker or Kubernetes); add --log-file FILE for a file",
    ]

    public static let usage = """
        usage: websockify [options] [source_addr:]source_port target_addr:target_port
               websockify [options] --token-plugin=CLASS [source_addr:]source_port
               websockify [options] --unix-target=FILE [source_addr:]source_port
               websockify [options] --unix-listen=FILE target_addr:target_port

        This is Ferry reading websockify's command line (Ferry starts this way when it is run as
        'websockify', or as 'ferry websockify ...'). It logs the equivalent Ferry command at start.

        Supported: --cert, --key, --ssl-only, --ssl-target, --verify-client, --cafile, --ssl-version,
        --ssl-ciphers, --web, --file-only, --heartbeat, --idle-timeout, --timeout, --run-once,
        --unix-listen, --unix-listen-mode, --unix-target, --host-token, --token-plugin and
        --token-source (TokenFile, ReadOnlyTokenFile, TokenFileName, JWTTokenApi, JSONTokenApi, TokenRedis,
        UnixDomainSocketDirectory), --target-config, --auth-plugin and --auth-source (ExpectOrigin,
        ClientCertCNAuth, BasicHTTPAuth with --web-auth), -v/--verbose, --log-file, -6/--prefer-ipv6, --record.
        Accepted with a warning: -D/--daemon, --libserver, --traffic.
        Ferry's own flags (see 'ferry --help') may be added, e.g. --allow-origin https://example.com.

        """
}
