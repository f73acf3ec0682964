package dev.baton.control;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The control socket carries long commands and long answers whole. */
class ControlServerTest {
    @TempDir
    Path dir;

    @Test
    void a_long_command_and_a_2000_line_answer_arrive_whole() throws Exception {
        StringBuilder table = new StringBuilder();
        for (int i = 0; i < 2000; i++) {
            table.append(String.format("map-%04d  tcp  0.0.0.0:%d  172.17.0.2:%d,172.17.0.3:%d  runtime%n",
                    i, 10000 + i, 20000 + i, 20000 + i));
        }
        String answer = table.toString();
        StringBuilder upstreams = new StringBuilder();
        for (int i = 0; i < 500; i++) {
            upstreams.append(i == 0 ? "" : ",").append("172.17.").append(i / 250).append('.').append(i % 250 + 1)
                    .append(":80");
        }
        String command = "map add tcp 0.0.0.0:8080 " + upstreams;
        Path socket = dir.resolve("ctl.sock");
        String[] received = new String[1];
        try (ControlServer server = ControlServer.start(socket, line -> {
            received[0] = line;
            return line.equals(command) ? answer : "FAIL truncated\n";
        }, () -> { })) {
            assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
            String got = ControlClient.send(socket, command);
            assertEquals(command, received[0]);
            assertEquals(answer.length(), got.length());
            assertEquals(answer, got);
        }
    }
}
