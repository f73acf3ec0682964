package dev.baton.socket;

import dev.baton.config.Protocol;
import org.junit.jupiter.api.Test;

import java.net.InetSocketAddress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What tells two listening sockets apart, and how a handoff names them. */
class ListenerKeyTest {
    private static InetSocketAddress a(String host, int port) {
        return new InetSocketAddress(host, port);
    }

    @Test
    void wire_names_carry_the_family_choice_and_the_namespace() {
        ListenerKey plain = new ListenerKey(Protocol.TCP, a("0.0.0.0", 80));
        ListenerKey v6only = new ListenerKey(Protocol.UDP, a("::", 53), true, 0);
        ListenerKey inside = new ListenerKey(Protocol.TCP, a("::", 80), true, 4026532291L);
        assertEquals("tcp:0.0.0.0:80", plain.wireName());
        assertEquals("udp:[::]:53,v6only", v6only.wireName());
        assertEquals("tcp:[::]:80,v6only,netns=4026532291", inside.wireName());
        assertEquals("tcp [::]:80 (IPv6 only) in net:[4026532291]", inside.toString());
        for (ListenerKey k : new ListenerKey[] {plain, v6only, inside}) {
            assertEquals(k, ListenerKey.parseWireName(k.wireName()));
        }
    }

    @Test
    void ipv6_only_matters_on_the_ipv6_wildcard_only() {
        assertFalse(new ListenerKey(Protocol.TCP, a("127.0.0.1", 80), true, 0).ipv6Only());
        assertFalse(new ListenerKey(Protocol.TCP, a("::1", 80), true, 0).ipv6Only());
        assertEquals(new ListenerKey(Protocol.TCP, a("::1", 80), true, 0), new ListenerKey(Protocol.TCP, a("::1", 80)));
        assertNotEquals(new ListenerKey(Protocol.TCP, a("::", 80), true, 0), new ListenerKey(Protocol.TCP, a("::", 80)));
        assertNotEquals(new ListenerKey(Protocol.TCP, a("0.0.0.0", 80), false, 7), new ListenerKey(Protocol.TCP, a("0.0.0.0", 80)));
    }

    @Test
    void equal_keys_are_those_equal_in_every_component_and_hash_alike() {
        ListenerKey k = new ListenerKey(Protocol.UDP, a("::", 53), true, 9);
        ListenerKey same = new ListenerKey(Protocol.UDP, a("::", 53), true, 9);
        assertEquals(k, same);
        assertEquals(k.hashCode(), same.hashCode());
        assertNotEquals(k, new ListenerKey(Protocol.TCP, a("::", 53), true, 9));
        assertNotEquals(k, new ListenerKey(Protocol.UDP, a("::", 54), true, 9));
        assertNotEquals(k, new ListenerKey(Protocol.UDP, a("::1", 53), true, 9));
        assertNotEquals(k, new ListenerKey(Protocol.UDP, a("::", 53), false, 9));
        assertNotEquals(k, new ListenerKey(Protocol.UDP, a("::", 53), true, 8));
        assertNotEquals(k, null);
        assertNotEquals(k, (Object) "udp:[::]:53,v6only,netns=9");
        java.util.Set<ListenerKey> set = new java.util.HashSet<>(java.util.List.of(k));
        assertTrue(set.contains(same));
    }
}
