import ArgumentParser
import FerryCore

/// Tokens (files, folders, JWTs), the targets they may name, and Basic authentication. Shown under "AUTHENTICATION" in `ferry --help`.
struct AuthenticationFlags: ParsableArguments {
    @Option(help: ArgumentHelp("websockify TokenFile ('token: host:port' lines), or a folder of them; reloaded on change, removed tokens end their sessions.", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("JWT key: an HMAC secret (HS256/384/512), a PEM key (RS256, ES256, EdDSA) or a JWKS file.", valueName: "file"))
    var jwtKey: String?

    @Option(help: ArgumentHelp("A dynamic target allowed by tokens: HOST:PORTS or CIDR:PORTS (PORTS: 5900, 5900-5999 or *), unix:/path, or any (trust every target the token source names, as websockify does). Repeatable; with none, dynamic targets are refused.", valueName: "rule"))
    var allowTarget: [String] = []

    @Option(help: ArgumentHelp("HTTP Basic authentication for the upgrade: USER:PASSWORD (visible to other local users in the process list), or @FILE with one USER:PASSWORD per line. Repeatable.", valueName: "credentials"))
    var basicAuth: [String] = []

    @Flag(help: "Also require --basic-auth for the --web files (websockify's --web-auth).")
    var basicAuthWeb = false

    @Option(help: ArgumentHelp("Also read the token from this cookie. (default: cookies are not read)", valueName: "name"))
    var tokenCookie: String?

    @Option(help: ArgumentHelp("A folder of files, each named by a token and holding its target HOST:PORT (websockify's TokenFileName).", valueName: "dir"))
    var tokenFilenames: String?

    @Option(help: ArgumentHelp("A folder of Unix sockets; a token is the name of one (websockify's UnixDomainSocketDirectory).", valueName: "dir"))
    var tokenSockets: String?

    @Flag(help: "The token is the host name the client asked for (Host header, without port), as websockify's --host-token; no other place is read.")
    var tokenFromHost = false

    @Option(help: ArgumentHelp("How an HMAC secret in --jwt-key is written: raw (the file's bytes) or base64url (as websockify's JWTTokenApi reads it). (default: raw)", valueName: "encoding"))
    var jwtSecretEncoding: String?

    @Option(help: ArgumentHelp("Require this JWT 'iss'.", valueName: "issuer"))
    var jwtIssuer: String?

    @Option(help: ArgumentHelp("Require this JWT 'aud'.", valueName: "audience"))
    var jwtAudience: String?

    @Flag(help: "Close a session with 1008 when its JWT expires.")
    var jwtEnforceExpiryOnSession = false

    func apply(to options: inout CommandLineOptions) {
        options.tokenFile = self.tokenFile
        options.jwtKey = self.jwtKey
        options.allowTarget = self.allowTarget
        options.basicAuth = self.basicAuth
        options.basicAuthWeb = self.basicAuthWeb
        options.tokenCookie = self.tokenCookie
        options.tokenFilenames = self.tokenFilenames
        options.tokenSockets = self.tokenSockets
        options.tokenFromHost = self.tokenFromHost
        options.jwtSecretEncoding = self.jwtSecretEncoding
        options.jwtIssuer = self.jwtIssuer
        options.jwtAudience = self.jwtAudience
        options.jwtEnforceExpiryOnSession = self.jwtEnforceExpiryOnSession
    }
}
