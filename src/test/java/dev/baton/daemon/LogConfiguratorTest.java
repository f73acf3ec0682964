package dev.baton.daemon;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.joran.JoranConfigurator;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.LoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class LogConfiguratorTest {
    @TempDir
    Path dir;

    @AfterEach
    void clear() {
        System.clearProperty("logback.configurationFile");
        System.clearProperty("BATON_LOG_LEVEL");
    }

    /** The file the package ships (conf/) is the one in the jar that the configurator compares against. */
    @Test
    void theShippedFileIsTheBuiltInOne() throws Exception {
        assertArrayEquals(Files.readAllBytes(Path.of("conf/logback.xml")),
                Files.readAllBytes(Path.of("src/main/resources/logback.xml")));
    }

    /** In code and by logback from the shipped file: the same loggers, levels, appender and output. */
    @Test
    void sameOutcomeAsLogbackReadingTheShippedFile() throws Exception {
        System.setProperty("BATON_LOG_LEVEL", "debug");
        LoggerContext byLogback = new LoggerContext();
        JoranConfigurator joran = new JoranConfigurator();
        joran.setContext(byLogback);
        joran.doConfigure(Path.of("conf/logback.xml").toFile());

        System.setProperty("logback.configurationFile", Path.of("conf/logback.xml").toAbsolutePath().toString());
        LoggerContext inCode = new LoggerContext();
        LogConfigurator c = new LogConfigurator();
        c.setContext(inCode);
        assertEquals(Configurator.ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY, c.configure(inCode));

        for (LoggerContext ctx : new LoggerContext[] {byLogback, inCode}) {
            assertEquals(Level.DEBUG, ctx.getLogger(Logger.ROOT_LOGGER_NAME).getLevel());
            assertEquals(Level.WARN, ctx.getLogger("io.netty").getLevel());
        }
        assertEquals(describe(byLogback), describe(inCode));
        // the encoders' output, byte for byte: levels of every width, a logger without a package,
        // an exception with a cause
        IllegalStateException boom = new IllegalStateException("boom", new java.io.IOException("under"));
        Object[][] events = {
                {"dev.baton.tcp.TcpProxy", Level.INFO, "hello {}", null},
                {"baton", Level.WARN, "a warning", null},
                {"io.netty.channel.Foo", Level.ERROR, "failed", boom},
                {"dev.baton.X", Level.DEBUG, "details {}", null},
                {"dev.baton.X", Level.TRACE, "more", null}};
        for (Object[] ev : events) {
            LoggingEvent e = new LoggingEvent("x", byLogback.getLogger((String) ev[0]), (Level) ev[1], (String) ev[2],
                    (Throwable) ev[3], new Object[] {"there"});
            e.setThreadName("worker-1-2");
            String expected = new String(encoder(byLogback).encode(e), StandardCharsets.UTF_8);
            assertEquals(expected, new String(encoder(inCode).encode(e), StandardCharsets.UTF_8));
        }
        assertEquals(LogConfigurator.PATTERN, ((PatternLayoutEncoder) encoder(byLogback)).getPattern());
    }

    @Test
    void anEditedFileOrAnUnknownLevelIsLeftToLogback() throws Exception {
        Path copy = dir.resolve("logback.xml");
        Files.copy(Path.of("conf/logback.xml"), copy);
        System.setProperty("logback.configurationFile", copy.toString());
        assertEquals(Level.INFO, LogConfigurator.shippedFileLevel());
        System.setProperty("BATON_LOG_LEVEL", "WARN");
        assertEquals(Level.WARN, LogConfigurator.shippedFileLevel());
        System.setProperty("BATON_LOG_LEVEL", "loud");
        assertNull(LogConfigurator.shippedFileLevel());
        System.clearProperty("BATON_LOG_LEVEL");

        Files.writeString(copy, Files.readString(copy).replace("WARN", "INFO"));
        assertNull(LogConfigurator.shippedFileLevel());
        LoggerContext ctx = new LoggerContext();
        LogConfigurator c = new LogConfigurator();
        c.setContext(ctx);
        assertEquals(Configurator.ExecutionStatus.INVOKE_NEXT_IF_ANY, c.configure(ctx));
        assertNull(ctx.getLogger(Logger.ROOT_LOGGER_NAME).getAppender("STDOUT"), "nothing configured");

        System.setProperty("logback.configurationFile", dir.resolve("missing.xml").toString());
        assertNull(LogConfigurator.shippedFileLevel());
        System.clearProperty("logback.configurationFile");
        assertNull(LogConfigurator.shippedFileLevel());
    }

    private static String describe(LoggerContext ctx) {
        ConsoleAppender<?> a = (ConsoleAppender<?>) ctx.getLogger(Logger.ROOT_LOGGER_NAME).getAppender("STDOUT");
        return a.getClass().getName() + " started=" + a.isStarted() + " target=" + a.getTarget()
                + " encoder started=" + a.getEncoder().isStarted() + " additive=" + ctx.getLogger("io.netty").isAdditive();
    }

    @SuppressWarnings("unchecked")
    private static Encoder<ILoggingEvent> encoder(LoggerContext ctx) {
        return ((ConsoleAppender<ILoggingEvent>) ctx.getLogger(Logger.ROOT_LOGGER_NAME).getAppender("STDOUT"))
                .getEncoder();
    }
}
