package dev.baton.config;

import dev.baton.testkit.Namespaces;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** listen-netns, upstream-netns and ipv6-only in configuration files: values, defaults, errors with file:line. */
class NetnsConfigTest {
    @TempDir
    Path dir;

    private Path write(String text) throws Exception {
        Path f = dir.resolve("n" + System.nanoTime() + ".conf");
        Files.writeString(f, text);
        return f;
    }

    @Test
    void a_namespace_path_must_name_a_network_namespace() throws Exception {
        Path f = write("baton.proxies {\n"
                + "  a {\n    listen = \"127.0.0.1:7001\"\n    upstreams = \"127.0.0.1:1\"\n"
                + "    upstream-netns = \"/run/netns/no-such-baton-ns\"\n  }\n"
                + "  b {\n    listen = \"127.0.0.1:7002\"\n    upstreams = \"127.0.0.1:1\"\n"
                + "    listen-netns = \"/proc/self/ns/mnt\"\n  }\n"
                + "  c {\n    listen = \"127.0.0.1:7003\"\n    upstreams = \"127.0.0.1:1\"\n"
                + "    upstream-netns = \"run/netns/x\"\n    listen-netns = [\"/a\"]\n  }\n"
                + "  d { listen = \"127.0.0.1:7004\", upstreams = \"127.0.0.1:1\", upstream-nets = \"/x\" }\n"
                + "}\n");
        List<String> e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors();
        assertEquals(List.of(
                f + ":5: baton.proxies.a.upstream-netns: /run/netns/no-such-baton-ns: no such file",
                f + ":10: baton.proxies.b.listen-netns: /proc/self/ns/mnt: a mount namespace, not a network namespace",
                f + ":16: baton.proxies.c.listen-netns: must be a string",
                f + ":15: baton.proxies.c.upstream-netns: must be an absolute path (/run/netns/NAME or /proc/PID/ns/net)",
                f + ":18: baton.proxies.d.upstream-nets: unknown key (did you mean 'upstream-netns'?)"),
                e.stream().sorted((x, y) -> x.substring(x.indexOf("proxies.")).compareTo(y.substring(y.indexOf("proxies."))))
                        .toList());
    }

    @Test
    void defaults_and_baton_s_own_namespace() throws Exception {
        BatonConfig c = ConfigLoader.load(write("baton.proxies {\n"
                + "  a { listen = \"[::]:7001\", upstreams = \"127.0.0.1:1\" }\n"
                + "  b { listen = \"[::]:7002\", upstreams = \"127.0.0.1:1\", ipv6-only = false,"
                + " upstream-netns = \"/proc/self/ns/net\", listen-netns = \"/proc/self/ns/net\" }\n"
                + "}\n"));
        ProxyConfig a = c.proxies().get("a");
        assertTrue(a.ipv6Only(), "ipv6-only defaults to true");
        assertNull(a.listenNetns());
        assertNull(a.upstreamNetns());
        ProxyConfig b = c.proxies().get("b");
        assertEquals(false, b.ipv6Only());
        assertNull(b.upstreamNetns(), "baton's own namespace needs no switching");
        assertNull(b.listenNetns());
    }

    @Test
    void one_address_in_the_host_and_in_a_namespace_are_two_listeners() throws Exception {
        String why = Namespaces.unavailable();
        assumeTrue(why == null, why);
        try (Namespaces lab = new Namespaces()) {
            String ns = Namespaces.path(lab.add("a")).toString();
            BatonConfig c = ConfigLoader.load(write("baton.proxies {\n"
                    + "  host { listen = \"0.0.0.0:80-81\", upstreams = \"127.0.0.1:1\" }\n"
                    + "  inside { listen = \"0.0.0.0:80-81\", listen-netns = \"" + ns + "\", upstreams = \"127.0.0.1:1\","
                    + " upstream-netns = \"" + ns + "\" }\n"
                    + "}\n"));
            ProxyConfig inside = c.proxies().get("inside:80");
            assertNotNull(inside.listenNetns());
            assertSame(inside.listenNetns(), c.proxies().get("inside:81").listenNetns(), "one descriptor per path");
            assertSame(inside.listenNetns(), inside.upstreamNetns());
            assertNull(c.proxies().get("host:80").listenNetns());

            Path f = write("baton.proxies {\n"
                    + "  p { listen = \"0.0.0.0:80\", listen-netns = \"" + ns + "\", upstreams = \"127.0.0.1:1\" }\n"
                    + "  q {\n    listen = \"0.0.0.0:80\"\n    listen-netns = \"" + ns + "\"\n"
                    + "    upstreams = \"127.0.0.1:1\"\n  }\n}\n");
            List<String> e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors();
            // Either proxy may be read first; the other one is blamed, at its own line.
            assertEquals(1, e.size(), e.toString());
            assertTrue(e.get(0).equals(f + ":4: baton.proxies.q.listen: tcp 0.0.0.0:80 in " + ns
                    + " is already a listen address of proxy 'p'") || e.get(0).equals(f + ":2: baton.proxies.p.listen: "
                    + "tcp 0.0.0.0:80 in " + ns + " is already a listen address of proxy 'q'"), e.get(0));
        }
    }
}
