package dev.baton.handoff;

import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;

/**
 * The handoff protocol's words. Every message is one SOCK_SEQPACKET datagram: a text line of
 * space-separated fields (names URL-encoded), optionally with descriptors; byte payloads
 * follow a header as raw messages.
 *
 * <pre>
 * successor   -> predecessor: HELLO pid
 * predecessor -> successor:   LISTEN name index          (+1 fd, once per listening socket)
 * predecessor -> successor:   LISTEN-END
 * successor   -> predecessor: READY pid | FAIL reason
 * predecessor -> successor:   GO                         (it stopped accepting)
 * predecessor -> successor:   UDP listener index proxy client upstream queued replies (+1 fd, then datagrams)
 * predecessor -> successor:   UDP-END count              (the successor starts reading UDP)
 * predecessor -> successor:   TCP proxy flags toUpstreamLen toClientLen   (+2 fds, then payloads)
 * predecessor -> successor:   STATE-END tcp udp
 * </pre>
 */
final class Wire {
    static final String ENV_FD = "BATON_HANDOFF_FD";

    private Wire() {
    }

    static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    static String dec(String s) {
        return URLDecoder.decode(s, StandardCharsets.UTF_8);
    }
}
