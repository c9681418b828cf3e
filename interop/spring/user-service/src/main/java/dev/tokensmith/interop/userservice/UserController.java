package dev.tokensmith.interop.userservice;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.security.oauth2.client.OAuth2AuthorizeRequest;
import org.springframework.security.oauth2.client.OAuth2AuthorizedClient;
import org.springframework.security.oauth2.client.OAuth2AuthorizedClientManager;
import org.springframework.security.oauth2.core.OAuth2AccessToken;
import org.springframework.security.oauth2.core.OAuth2AuthorizationException;
import org.springframework.security.oauth2.server.resource.authentication.JwtAuthenticationToken;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.client.RestClient;
import org.springframework.web.client.RestClientResponseException;

/** The article's section 4.4: exchange the caller's token, then call message-service with the new one. */
@RestController
public class UserController {

    private final OAuth2AuthorizedClientManager authorizedClientManager;
    private final RestClient restClient = RestClient.create();
    private final String targetResourceServerUrl;

    public UserController(OAuth2AuthorizedClientManager authorizedClientManager,
            @Value("${message-service.url:http://localhost:8082/message}") String targetResourceServerUrl) {
        this.authorizedClientManager = authorizedClientManager;
        this.targetResourceServerUrl = targetResourceServerUrl;
    }

    @GetMapping("/user/message")
    public String message(JwtAuthenticationToken jwtAuthentication) {
        OAuth2AuthorizeRequest authorizeRequest = OAuth2AuthorizeRequest
                .withClientRegistrationId("my-message-service")
                .principal(jwtAuthentication)
                .build();
        OAuth2AuthorizedClient authorizedClient = this.authorizedClientManager.authorize(authorizeRequest);
        assert authorizedClient != null;
        OAuth2AccessToken accessToken = authorizedClient.getAccessToken();
        if (accessToken == null) {
            return "token exchange resource server";
        }
        RestClient.ResponseSpec responseSpec = restClient.get().uri(targetResourceServerUrl)
                .headers(headers -> headers.setBearerAuth(accessToken.getTokenValue()))
                .retrieve();
        ResponseEntity<String> responseEntity = responseSpec.toEntity(String.class);
        return responseEntity.getBody();
    }

    // Not in the article: say which hop failed and how, so an interop test names the disagreeing response.
    @ExceptionHandler(OAuth2AuthorizationException.class)
    public ResponseEntity<String> exchangeRefused(OAuth2AuthorizationException ex) {
        return ResponseEntity.status(HttpStatus.BAD_GATEWAY)
                .body("token exchange failed: " + ex.getError().getErrorCode() + ": " + ex.getError().getDescription());
    }

    @ExceptionHandler(RestClientResponseException.class)
    public ResponseEntity<String> downstreamRefused(RestClientResponseException ex) {
        String challenge = ex.getResponseHeaders() == null ? null
                : ex.getResponseHeaders().getFirst(HttpHeaders.WWW_AUTHENTICATE);
        return ResponseEntity.status(HttpStatus.BAD_GATEWAY)
                .body("message-service answered " + ex.getStatusCode().value() + " (WWW-Authenticate: " + challenge
                        + "): " + ex.getResponseBodyAsString());
    }
}
