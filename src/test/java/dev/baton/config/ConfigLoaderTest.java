package dev.baton.config;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigLoaderTest {
    @TempDir
    Path dir;

    private Path write(String name, String text) throws Exception {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.writeString(p, text);
        return p;
    }

    private List<String> errors(String text) throws Exception {
        Path f = write("baton.conf", text);
        return assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors();
    }

    @Test
    void a_valid_file_with_per_proxy_overrides() throws Exception {
        Path f = write("baton.conf", """
                baton {
                  workers = 3
                  tcp { keepalive { idle = 45s } }
                  proxies {
                    web { listen = ["127.0.0.1:8080", "[::1]:8080"], upstreams = ["10.0.0.2:80"], balance = least-conn
                          tcp { keepalive { idle = 30s }, backlog = 100 } }
                    dns { protocol = udp, listen = "127.0.0.1:5353", upstreams = "127.0.0.1:53", udp { max-flows = 9 } }
                  }
                }
                """);
        BatonConfig c = ConfigLoader.load(f);
        assertEquals(3, c.workers());
        ProxyConfig web = c.proxies().get("web");
        assertEquals(2, web.listen().size());
        assertEquals(Balance.LEAST_CONN, web.balance());
        assertEquals(Duration.ofSeconds(30), web.tcp().keepalive().idle());
        assertEquals(100, web.tcp().backlog());
        assertEquals(Duration.ofSeconds(10), web.tcp().keepalive().interval(), "default from reference.conf");
        ProxyConfig dns = c.proxies().get("dns");
        assertEquals(Protocol.UDP, dns.protocol());
        assertEquals(9, dns.udp().maxFlows());
        assertEquals(Duration.ofSeconds(45), dns.tcp().keepalive().idle(), "global tcp block applies");
    }

    @Test
    void every_error_names_file_line_and_key() throws Exception {
        List<String> e = errors("""
                baton {
                  wrokers = 2
                  transport = iouring
                  tcp { backlog = 0, connect-timeout = soon }
                  proxies {
                    a { listen = "127.0.0.1:99999", upstreams = ["x"] }
                    b { protocol = sctp, listen = "localhost:80", upstreams = "1.2.3.4:5" }
                    c { listen = "127.0.0.1:80", upstreams = "1.2.3.4:5", balanse = random-two }
                  }
                }
                """);
        String f = dir.resolve("baton.conf").toString();
        assertTrue(e.contains(f + ":2: baton.wrokers: unknown key (did you mean 'workers'?)"), e.toString());
        assertTrue(e.contains(f + ":3: baton.transport: 'iouring' is not one of auto, io_uring, epoll, nio"), e.toString());
        assertTrue(e.contains(f + ":4: baton.proxies.a.tcp.backlog: 0 is out of range 1-65535"), e.toString());
        assertTrue(e.contains(f + ":4: baton.proxies.a.tcp.connect-timeout: must be a duration such as 500ms, 30s, 5m or 1h"),
                e.toString());
        assertTrue(e.contains(f + ":6: baton.proxies.a.listen: '127.0.0.1:99999': port 99999 is out of range 1-65535"),
                e.toString());
        assertTrue(e.contains(f + ":6: baton.proxies.a.upstreams: 'x' is not an address: expected host:port"), e.toString());
        assertTrue(e.contains(f + ":7: baton.proxies.b.protocol: 'sctp' is not one of tcp, udp"), e.toString());
        assertTrue(e.contains(f + ":7: baton.proxies.b.listen: 'localhost:80': listen host must be an IP address, not a name"),
                e.toString());
        assertTrue(e.contains(f + ":8: baton.proxies.c.balanse: unknown key (did you mean 'balance'?)"), e.toString());
    }

    @Test
    void duplicate_listen_addresses_are_refused_per_protocol() throws Exception {
        List<String> e = errors("""
                baton.proxies {
                  a { listen = "127.0.0.1:80", upstreams = "10.0.0.1:80" }
                  b { listen = "127.0.0.1:80", upstreams = "10.0.0.2:80" }
                  c { protocol = udp, listen = "127.0.0.1:80", upstreams = "10.0.0.3:80" }
                }
                """);
        assertEquals(1, e.size(), e.toString());
        assertTrue(e.get(0).endsWith(":3: baton.proxies.b.listen: tcp 127.0.0.1:80 is already a listen address of proxy 'a'"),
                e.toString());
    }

    @Test
    void syntax_errors_name_the_line() throws Exception {
        List<String> e = errors("baton {\n  workers = 2\n  proxies {\n");
        assertEquals(1, e.size());
        assertTrue(e.get(0).startsWith(dir.resolve("baton.conf") + ":"), e.get(0));
    }

    @Test
    void a_directory_include_merges_every_file_in_name_order() throws Exception {
        write("conf.d/10-web.conf", "baton.proxies.web { listen = \"127.0.0.1:81\", upstreams = \"10.0.0.1:80\" }\n");
        write("conf.d/20-dns.conf", "baton.proxies.dns { protocol = udp, listen = \"127.0.0.1:53\", upstreams = \"10.0.0.1:53\" }\n");
        write("conf.d/30-web.conf", "baton.proxies.web.upstreams = \"10.0.0.9:80\"\n");
        write("conf.d/ignored.txt", "not hocon {{{");
        Path f = write("baton.conf", "baton { workers = 1 }\ninclude \"conf.d/*.conf\"\n");
        BatonConfig c = ConfigLoader.load(f);
        assertEquals(List.of("web", "dns"), List.copyOf(c.proxies().keySet()));
        assertEquals("10.0.0.9", c.proxies().get("web").upstreams().get(0).getAddress().getHostAddress());
    }

    @Test
    void an_empty_include_directory_is_fine_and_errors_inside_name_their_file() throws Exception {
        Path f = write("baton.conf", "include \"conf.d/*.conf\"\nbaton.workers = 1\n");
        assertEquals(0, ConfigLoader.load(f).proxies().size());
        Path bad = write("conf.d/bad.conf", "\nbaton.proxies.x { listen = \"127.0.0.1:1\", upstreams = \"10.0.0.1:1\", protocl = udp }\n");
        List<String> e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors();
        assertEquals(List.of(bad + ":2: baton.proxies.x.protocl: unknown key (did you mean 'protocol'?)"), e);
    }

    @Test
    void environment_variables_substitute() throws Exception {
        String home = System.getenv("HOME");
        Path f = write("baton.conf", "baton.control-socket = ${HOME}\"/x.sock\"\nbaton.workers = ${?BATON_TEST_UNSET_VAR}\n");
        BatonConfig c = ConfigLoader.load(f);
        assertEquals(Path.of(home + "/x.sock"), c.controlSocket());
    }
}
