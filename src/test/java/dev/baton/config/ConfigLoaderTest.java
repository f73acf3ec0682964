package dev.baton.config;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ConfigLoader on real files: every error is `FILE:LINE: key.path: message` with the right line. */
class ConfigLoaderTest {
    @TempDir
    Path dir;

    private static final String PROXY_A = "  proxies {\n    a {\n      listen = \"127.0.0.1:7001\"\n"
            + "      upstreams = \"127.0.0.1:7002\"\n    }\n  }\n";

    private Path write(String name, String text) throws Exception {
        Path f = dir.resolve(name);
        Files.createDirectories(f.getParent());
        Files.writeString(f, text);
        return f;
    }

    private List<String> errors(String name, String text) throws Exception {
        Path f = write(name, text);
        ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f));
        return e.errors();
    }

    @Test
    void unknownKeySuggestsTheNearestOne() throws Exception {
        Path f = dir.resolve("u.conf");
        assertEquals(List.of(f + ":3: baton.workerz: unknown key (did you mean 'workers'?)"),
                errors("u.conf", "baton {\n  transport = auto\n  workerz = 2\n}\n"));
    }

    @Test
    void unknownProxyKeySuggestsTheNearestOne() throws Exception {
        Path f = dir.resolve("p.conf");
        assertEquals(List.of(f + ":6: baton.proxies.a.upstream: unknown key (did you mean 'upstreams'?)"),
                errors("p.conf", "baton {\n  proxies {\n    a {\n      listen = \"127.0.0.1:1\"\n"
                        + "      upstreams = \"127.0.0.1:2\"\n      upstream = \"x\"\n    }\n  }\n}\n"));
    }

    @Test
    void wrongTypeAndOutOfRange() throws Exception {
        Path f = dir.resolve("t.conf");
        assertEquals(List.of(f + ":6: baton.proxies.a.tcp.backlog: must be a whole number",
                        f + ":6: baton.proxies.a.tcp.keepalive.count: -1 is out of range 1-127"),
                errors("t.conf", "baton {\n  proxies {\n    a {\n      listen = \"127.0.0.1:7001\"\n"
                        + "      upstreams = \"127.0.0.1:2\"\n"
                        + "      tcp { backlog = lots, keepalive { count = -1 } }\n    }\n  }\n}\n"));
        Path g = dir.resolve("w.conf");
        assertEquals(List.of(g + ":2: baton.workers: 5000 is out of range 1-1024"),
                errors("w.conf", "baton {\n  workers = 5000\n}\n"));
        Path h = dir.resolve("d.conf");
        assertEquals(List.of(h + ":7: baton.proxies.a.tcp.connect-timeout: must be a duration such as 500ms, 30s, 5m or 1h"),
                errors("d.conf", "baton {\n  proxies {\n    a {\n      listen = \"127.0.0.1:7001\"\n"
                        + "      upstreams = \"127.0.0.1:2\"\n"
                        + "      tcp {\n        connect-timeout = soon\n      }\n    }\n  }\n}\n"));
    }

    @Test
    void aBadGlobalValueIsReportedOnceUnderItsOwnKeyWithOrWithoutProxies() throws Exception {
        Path f = dir.resolve("g.conf");
        assertEquals(List.of(f + ":2: baton.tcp.backlog: must be a whole number"),
                errors("g.conf", "baton {\n  tcp { backlog = lots }\n}\n"));
        Path h = dir.resolve("h.conf");
        assertEquals(List.of(h + ":2: baton.udp.max-flows: 0 is out of range 1-10000000"),
                errors("h.conf", "baton {\n  udp { max-flows = 0 }\n" + PROXY_A + "  proxies.b { listen = "
                        + "\"127.0.0.1:7003\", upstreams = \"127.0.0.1:7004\" }\n}\n"));
    }

    @Test
    void badAddresses() throws Exception {
        Path f = dir.resolve("a.conf");
        assertEquals(List.of(
                        f + ":4: baton.proxies.a.listen: '127.0.0.1:99999': port 99999 is out of range 1-65535",
                        f + ":5: baton.proxies.a.upstreams: 'nohostport' is not an address: expected host:port"),
                errors("a.conf", "baton {\n  proxies {\n    a {\n      listen = \"127.0.0.1:99999\"\n"
                        + "      upstreams = \"nohostport\"\n    }\n  }\n}\n"));
    }

    @Test
    void duplicateListenAddressOfTheSameProtocolIsAnError() throws Exception {
        Path f = dir.resolve("dup.conf");
        List<String> errs = errors("dup.conf", "baton {\n  proxies {\n    a {\n      listen = \"127.0.0.1:7000\"\n"
                + "      upstreams = \"127.0.0.1:2\"\n    }\n    b {\n      listen = \"127.0.0.1:7000\"\n"
                + "      upstreams = \"127.0.0.1:3\"\n    }\n  }\n}\n");
        assertEquals(1, errs.size(), errs.toString());
        Matcher m = Pattern.compile(Pattern.quote(f.toString()) + ":(\\d+): baton\\.proxies\\.(a|b)\\.listen: "
                + "tcp 127\\.0\\.0\\.1:7000 is already a listen address of proxy '(a|b)'").matcher(errs.get(0));
        assertTrue(m.matches(), errs.get(0));
        assertNotEquals(m.group(2), m.group(3));
        assertEquals(m.group(2).equals("a") ? "4" : "8", m.group(1), "line of the reported proxy's listen");
    }

    @Test
    void sameAddressForTcpAndUdpIsFine() throws Exception {
        Path f = write("ok.conf", "baton {\n  proxies {\n    a {\n      listen = \"127.0.0.1:7000\"\n"
                + "      upstreams = \"127.0.0.1:2\"\n    }\n    b {\n      protocol = udp\n"
                + "      listen = \"127.0.0.1:7000\"\n      upstreams = \"127.0.0.1:3\"\n    }\n  }\n}\n");
        BatonConfig c = ConfigLoader.load(f);
        assertEquals(2, c.proxyList().size());
        assertEquals(Protocol.TCP, c.proxyList().stream().filter(p -> p.name().equals("a")).findFirst().orElseThrow().protocol());
        assertEquals(Protocol.UDP, c.proxyList().stream().filter(p -> p.name().equals("b")).findFirst().orElseThrow().protocol());
    }

    @Test
    void includesEveryFileOfAConfDDirectory() throws Exception {
        write("conf.d/one.conf", "baton.proxies.one { listen = \"127.0.0.1:7011\", upstreams = \"127.0.0.1:7012\" }\n");
        write("conf.d/two.conf", "baton.proxies.two { protocol = udp, listen = \"127.0.0.1:7021\", upstreams = \"127.0.0.1:7022\" }\n");
        write("conf.d/ignored.txt", "this is not HOCON {{{\n");
        Path f = write("main.conf", "baton {\n" + PROXY_A + "}\ninclude \"conf.d/*.conf\"\n");
        BatonConfig c = ConfigLoader.load(f);
        assertEquals(List.of("a", "one", "two"), c.proxyList().stream().map(ProxyConfig::name).sorted().toList());
        // An error in an included file names that file and its line.
        write("conf.d/three.conf", "\n\nbaton.proxies.three { listen = \"127.0.0.1:7031\", upstreams = \"127.0.0.1:7032\", balanse = random-two }\n");
        ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f));
        assertEquals(List.of(dir.resolve("conf.d/three.conf") + ":3: baton.proxies.three.balanse: unknown key (did you mean 'balance'?)"),
                e.errors());
    }

    @Test
    void optionalEnvSubstitution() throws Exception {
        // An unset ${?VAR} leaves the earlier value; a set one replaces it.
        Path f = write("env.conf", "baton {\n  workers = 3\n  workers = ${?BATON_TEST_SURELY_UNSET_VAR}\n" + PROXY_A + "}\n");
        assertEquals(3, ConfigLoader.load(f).workers());
        String home = System.getenv("HOME");
        if (home != null) {
            List<String> errs = errors("env2.conf", "baton {\n  transport = auto\n  transport = ${?HOME}\n}\n");
            assertEquals(1, errs.size(), errs.toString());
            assertTrue(errs.get(0).endsWith("baton.transport: '" + home + "' is not one of auto, io_uring, epoll, nio"),
                    errs.get(0));
        }
    }

    @Test
    void missingFileAndSyntaxError() throws Exception {
        Path missing = dir.resolve("nope.conf");
        ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(missing));
        assertEquals(List.of(missing + ": cannot read: no such file"), e.errors());
        List<String> errs = errors("syn.conf", "baton {\n  workers = 2\n  tcp {\n}\n");
        assertEquals(1, errs.size());
        assertTrue(errs.get(0).startsWith(dir.resolve("syn.conf") + ":5: "), errs.get(0));
    }
}
