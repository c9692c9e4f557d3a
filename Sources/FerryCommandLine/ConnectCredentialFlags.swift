import ArgumentParser
import FerryCore
import Foundation

/// What `ferry connect`'s upgrade request carries: a token and where, extra headers, an origin,
/// Basic credentials. Shown under "Credentials and headers".
public struct ConnectCredentialFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Token for the relay's auth=token route (visible in the process list: prefer --token-file).", valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp("Read the token from this file (its first line).", valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Where the token travels: subprotocol (bearer.TOKEN next to binary), header (Authorization: Bearer), cookie (token=) or query (?token=, for websockify). (default: subprotocol)", valueName: "carrier"))
    var tokenIn: String?

    @Option(help: ArgumentHelp("Extra request header, 'Name: value'. Repeatable.", valueName: "header"))
    var header: [String] = []

    @Option(help: ArgumentHelp("Origin header, for relays that check origins (--allow-origin).", valueName: "origin"))
    var origin: String?

    @Option(help: ArgumentHelp("HTTP Basic credentials, USER:PASSWORD, or @FILE holding USER:PASSWORD (out of the process list).", valueName: "user:password"))
    var basicAuth: String?

    func requestOptions() throws(ConfigurationError) -> UpgradeRequestOptions {
        var options = UpgradeRequestOptions()
        options.token = try self.readToken()
        if let text = self.tokenIn {
            guard let carrier = UpgradeRequestOptions.TokenCarrier(rawValue: text.lowercased()) else {
                throw ConfigurationError(flag: "--token-in", value: text, problem: "unknown carrier", expected: UpgradeRequestOptions.TokenCarrier.allCases.map(\.rawValue).joined(separator: "|"))
            }
            guard options.token != nil else {
                throw ConfigurationError(flag: "--token-in", value: text, problem: "needs a token", expected: "--token-file FILE or --token TOKEN")
            }
            options.tokenCarrier = carrier
        }
        options.headers = try self.header.map { (text) throws(ConfigurationError) in try UpgradeRequestOptions.parseHeader(text) }
        options.origin = self.origin
        if let text = self.basicAuth {
            if text.hasPrefix("@") {
                let pairs = try BasicCredentials.parse(text)
                options.basicAuth = HeaderField(name: pairs[0].user, value: pairs[0].password)
            } else {
                options.basicAuth = try UpgradeRequestOptions.parseBasicAuth(text)
            }
        }
        try options.check()
        return options
    }

    private func readToken() throws(ConfigurationError) -> String? {
        switch (self.token, self.tokenFile) {
        case (nil, nil):
            return nil
        case (let token?, nil):
            return token
        case (nil, let path?):
            return try FlagValue.secret(inFile: path, flag: "--token-file")
        case (_?, let path?):
            throw ConfigurationError(flag: "--token-file", value: path, problem: "given with --token", expected: "one of --token and --token-file")
        }
    }
}
