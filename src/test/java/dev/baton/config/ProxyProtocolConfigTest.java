package dev.baton.config;

import dev.baton.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** proxy-protocol and accept-proxy-protocol: parsed into the model, every mistake at its file and line. */
class ProxyProtocolConfigTest {
    @TempDir
    Path dir;

    private Path write(String name, String text) throws Exception {
        Path f = dir.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    /** What `baton check -c FILE` prints on stderr, and its exit code. */
    private record Check(int exit, List<String> err) {
    }

    private Check check(Path f) {
        PrintStream saved = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int exit;
        try {
            System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
            exit = Main.execute("check", "-c", f.toString());
        } finally {
            System.setErr(saved);
        }
        String text = buf.toString(StandardCharsets.UTF_8).strip();
        return new Check(exit, text.isEmpty() ? List.of() : List.of(text.split("\n")));
    }

    @Test
    void validSettingsReachTheModel() throws Exception {
        Path f = write("ok.conf", "baton.proxies {\n"
                + "  web { listen = \"127.0.0.1:7001\", upstreams = \"127.0.0.1:7002\", proxy-protocol = v1,\n"
                + "        accept-proxy-protocol = [\"10.0.0.0/8\", \"127.0.0.1\", \"fd00::/8\"] }\n"
                + "  dns { protocol = udp, listen = \"127.0.0.1:7003\", upstreams = \"127.0.0.1:7004\", proxy-protocol = v2 }\n"
                + "  plain { listen = \"127.0.0.1:7005\", upstreams = \"127.0.0.1:7006\" }\n"
                + "}\n");
        BatonConfig c = ConfigLoader.load(f);
        ProxyProtocolSettings web = c.proxies().get("web").proxyProtocol();
        assertEquals(ProxyProtocol.V1, web.send());
        assertEquals(List.of("10.0.0.0/8", "127.0.0.1/32", "fd00:0:0:0:0:0:0:0/8"),
                web.acceptFrom().stream().map(Cidr::toString).toList());
        assertTrue(web.trusts(InetAddress.getByName("10.20.30.40")));
        assertTrue(web.trusts(InetAddress.getByName("::ffff:127.0.0.1")), "IPv4-mapped counts as IPv4");
        assertTrue(web.trusts(InetAddress.getByName("fd12::1")));
        assertFalse(web.trusts(InetAddress.getByName("127.0.0.2")));
        assertFalse(web.trusts(InetAddress.getByName("11.0.0.1")));
        assertEquals(ProxyProtocol.V2, c.proxies().get("dns").proxyProtocol().send());
        assertEquals(ProxyProtocolSettings.OFF, c.proxies().get("plain").proxyProtocol());
        assertEquals(0, check(f).exit());
    }

    @Test
    void v1OnAUdpProxyIsRefusedAtItsLine() throws Exception {
        Path f = write("udp.conf", "baton {\n  proxies {\n    dns {\n      protocol = udp\n"
                + "      listen = \"127.0.0.1:7003\"\n      upstreams = \"127.0.0.1:7004\"\n"
                + "      proxy-protocol = v1\n    }\n  }\n}\n");
        List<String> want = List.of(f + ":7: baton.proxies.dns.proxy-protocol: v1 has no UDP form; use v2 for a udp proxy");
        assertEquals(want, assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors());
        assertEquals(new Check(1, want), check(f));
    }

    @Test
    void badValuesAndNetworksAreEachReportedAtTheirLine() throws Exception {
        Path f = write("bad.conf", "baton {\n  proxies {\n    web {\n"
                + "      listen = \"127.0.0.1:7001\"\n      upstreams = \"127.0.0.1:7002\"\n"
                + "      proxy-protocol = v3\n"
                + "      accept-proxy-protocol = [\n"
                + "        \"10.0.0.0/8\"\n"
                + "        \"10.0.0.0/33\"\n"
                + "        \"10.1.2.3/8\"\n"
                + "        \"lb.example\"\n"
                + "        42\n"
                + "      ]\n    }\n"
                + "    dns {\n      protocol = udp, listen = \"127.0.0.1:7003\", upstreams = \"127.0.0.1:7004\"\n"
                + "      accept-proxy-protocol = [\"10.0.0.0/8\"]\n    }\n  }\n}\n");
        List<String> want = List.of(
                f + ":6: baton.proxies.web.proxy-protocol: 'v3' is not one of off, v1, v2",
                f + ":9: baton.proxies.web.accept-proxy-protocol: '10.0.0.0/33': prefix length must be 0-32",
                f + ":10: baton.proxies.web.accept-proxy-protocol: '10.1.2.3/8' has bits set beyond its prefix "
                        + "(the network is 10.0.0.0/8)",
                f + ":11: baton.proxies.web.accept-proxy-protocol: 'lb.example' is not a network: expected an IP "
                        + "address or address/prefix such as 10.0.0.0/8",
                f + ":12: baton.proxies.web.accept-proxy-protocol: expected a network such as \"10.0.0.0/8\", got number",
                f + ":17: baton.proxies.dns.accept-proxy-protocol: only a tcp proxy can accept PROXY protocol headers");
        assertEquals(want, assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors());
        assertEquals(new Check(1, want), check(f));
    }

    @Test
    void aMisspeltKeyIsSuggested() throws Exception {
        Path f = write("typo.conf", "baton.proxies.web {\n  listen = \"127.0.0.1:7001\"\n"
                + "  upstreams = \"127.0.0.1:7002\"\n  proxy-protocl = v2\n}\n");
        assertEquals(List.of(f + ":4: baton.proxies.web.proxy-protocl: unknown key (did you mean 'proxy-protocol'?)"),
                assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors());
    }
}
