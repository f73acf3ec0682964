package dev.baton.config;

import com.typesafe.config.ConfigValueFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** STATE-DIR/mappings.conf: read with the configuration, checked against it, written atomically. */
class RuntimeMappingsTest {
    @TempDir
    Path dir;

    private Path config(String proxies) throws Exception {
        Path f = dir.resolve("baton.conf");
        Files.writeString(f, "baton {\n  state-dir = \"state\"\n  proxies {\n" + proxies + "  }\n}\n");
        return f;
    }

    private Path mappings(String text) throws Exception {
        Path f = dir.resolve("state/mappings.conf");
        Files.createDirectories(f.getParent());
        Files.writeString(f, text);
        return f;
    }

    private static final String WEB = "    web { listen = \"127.0.0.1:7001\", upstreams = \"127.0.0.1:7002\" }\n";

    @Test
    void mappings_are_proxies_next_to_those_of_the_file() throws Exception {
        Path m = mappings("baton.proxies {\n"
                + "  db { listen = \"127.0.0.1:5432\", upstreams = \"172.17.0.2:5432\" }\n"
                + "  \"udp-9000-9001\" { protocol = udp, listen = \"[::1]:9000-9001\", upstreams = \"172.17.0.3:53\" }\n"
                + "}\n");
        BatonConfig c = ConfigLoader.load(config(WEB));
        assertEquals(List.of("web", "db", "udp-9000-9001:9000", "udp-9000-9001:9001"), List.copyOf(c.proxies().keySet()));
        assertEquals(m, c.runtime().file());
        assertEquals(Map.of("db", "db", "udp-9000-9001:9000", "udp-9000-9001", "udp-9000-9001:9001", "udp-9000-9001"),
                c.runtime().proxies());
        ProxyConfig p = c.proxies().get("udp-9000-9001:9001");
        assertEquals(Protocol.UDP, p.protocol());
        assertEquals(List.of(new InetSocketAddress("::1", 9001)), p.listen());
        assertEquals(List.of(new InetSocketAddress("172.17.0.3", 53)), p.upstreams());
        assertEquals(c.proxies().get("web").tcp(), c.proxies().get("db").tcp(), "mappings inherit the global tcp block");
    }

    @Test
    void no_file_no_mappings_and_the_default_state_dir_is_var_lib_baton() throws Exception {
        BatonConfig c = ConfigLoader.load(config(WEB));
        assertTrue(c.runtime().entries().isEmpty());
        Path plain = dir.resolve("plain.conf");
        Files.writeString(plain, "baton.proxies {\n" + WEB + "}\n");
        assertEquals(Path.of("/var/lib/baton/mappings.conf"), ConfigLoader.load(plain).runtime().file());
    }

    @Test
    void a_mapping_may_not_take_a_listen_address_or_name_of_the_file() throws Exception {
        Path m = mappings("baton.proxies {\n"
                + "  other { listen = \"127.0.0.1:7001\", upstreams = \"127.0.0.1:1\" }\n"
                + "  web { listen = \"127.0.0.1:7003\", upstreams = \"127.0.0.1:1\" }\n"
                + "}\n");
        List<String> e = assertThrows(ConfigException.class, () -> ConfigLoader.load(config(WEB))).errors();
        assertTrue(e.contains(m + ":2: baton.proxies.other.listen: tcp 127.0.0.1:7001 is already a listen address of "
                + "proxy 'web'"), e.toString());
        assertTrue(e.contains(m + ":3: baton.proxies.web: the configuration file has a proxy named 'web' already"),
                e.toString());
    }

    @Test
    void errors_in_the_mappings_file_name_its_line_and_key() throws Exception {
        Path m = mappings("baton.proxies {\n"
                + "  a { listen = \"127.0.0.1:7005\", upstream = \"127.0.0.1:1\" }\n"
                + "}\n"
                + "baton.workers = 3\n");
        List<String> e = assertThrows(ConfigException.class, () -> ConfigLoader.load(config(WEB))).errors();
        assertTrue(e.contains(m + ":2: baton.proxies.a.upstream: unknown key (did you mean 'upstreams'?)"), e.toString());
        assertTrue(e.contains(m + ":4: baton.workers: a mappings file holds only baton.proxies { NAME { ... } }"),
                e.toString());

        mappings("baton.proxies { a { listen = \"127.0.0.1:7005\"");
        e = assertThrows(ConfigException.class, () -> ConfigLoader.load(config(WEB))).errors();
        assertTrue(e.get(0).startsWith(m + ":1: "), e.toString());
    }

    @Test
    void written_atomically_with_mode_0640_and_read_back_the_same() throws Exception {
        Path cfg = config(WEB);
        BatonConfig empty = ConfigLoader.load(cfg);
        Map<String, com.typesafe.config.ConfigObject> entries = new TreeMap<>();
        entries.put("tcp-[::]-8080", ConfigValueFactory.fromMap(Map.of("protocol", "tcp",
                "listen", List.of("[::]:8080", "0.0.0.0:8080"), "upstreams", List.of("172.17.0.2:80"))));
        entries.put("r", ConfigValueFactory.fromMap(Map.of("protocol", "udp",
                "listen", List.of("0.0.0.0:8000-8002"), "upstreams", List.of("172.17.0.2:9000-9002"))));
        String text = RuntimeMappings.render(entries);
        BatonConfig expected = ConfigLoader.withMappings(empty, text);

        Path file = empty.runtime().file();
        RuntimeMappings.write(file, text);
        RuntimeMappings.write(file, text); // replacing an existing file
        assertEquals(text, Files.readString(file));
        assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        try (var listing = Files.list(file.getParent())) {
            assertEquals(List.of(file), listing.toList(), "no temporary file is left behind");
        }
        BatonConfig read = ConfigLoader.load(cfg);
        assertEquals(expected.proxies(), read.proxies());
        assertEquals(List.of("web", "r:8000", "r:8001", "r:8002", "tcp-[::]-8080"), List.copyOf(read.proxies().keySet()));
        assertEquals(text, RuntimeMappings.render(read.runtime().entries()), "what is read renders back the same");
    }

    @Test
    void with_mappings_keeps_the_file_proxies_and_checks_the_new_set() throws Exception {
        BatonConfig c = ConfigLoader.load(config(WEB));
        Map<String, com.typesafe.config.ConfigObject> entries = new TreeMap<>();
        entries.put("db", ConfigValueFactory.fromMap(Map.of("listen", List.of("127.0.0.1:5432"),
                "upstreams", List.of("172.17.0.2:5432"))));
        BatonConfig next = ConfigLoader.withMappings(c, RuntimeMappings.render(entries));
        assertSame(c.proxies().get("web"), next.proxies().get("web"), "the configuration file is not read again");
        assertEquals(List.of("web", "db"), List.copyOf(next.proxies().keySet()));
        assertEquals(Map.of("db", "db"), next.runtime().proxies());

        entries.put("clash", ConfigValueFactory.fromMap(Map.of("listen", List.of("127.0.0.1:7001"),
                "upstreams", List.of("127.0.0.1:1"))));
        ConfigException e = assertThrows(ConfigException.class,
                () -> ConfigLoader.withMappings(next, RuntimeMappings.render(entries)));
        assertTrue(e.errors().get(0).contains("baton.proxies.clash.listen: tcp 127.0.0.1:7001 is already a listen "
                + "address of proxy 'web'"), e.errors().toString());

        BatonConfig none = ConfigLoader.withMappings(next, RuntimeMappings.render(Map.of()));
        assertEquals(List.of("web"), List.copyOf(none.proxies().keySet()));
        assertFalse(none.runtime().proxies().containsKey("db"));
    }
}
