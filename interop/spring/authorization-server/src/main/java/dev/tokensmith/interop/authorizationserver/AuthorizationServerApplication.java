package dev.tokensmith.interop.authorizationserver;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.annotation.Bean;
import org.springframework.security.core.userdetails.User;
import org.springframework.security.core.userdetails.UserDetailsService;
import org.springframework.security.provisioning.InMemoryUserDetailsManager;

/**
 * The article's authorization server: Spring Authorization Server as Spring Boot configures it, with the clients
 * from application.yml. Everything else (filter chains, OIDC, a generated RSA key) is Boot's auto-configuration.
 */
@SpringBootApplication
public class AuthorizationServerApplication {

    public static void main(String[] args) {
        SpringApplication.run(AuthorizationServerApplication.class, args);
    }

    // The article's user. Declared as a bean because Boot skips its spring.security.user default when the
    // authorization server contributes a JwtDecoder.
    @Bean
    UserDetailsService users() {
        return new InMemoryUserDetailsManager(
                User.withUsername("baeldung").password("{noop}password").roles("USER").build());
    }
}
