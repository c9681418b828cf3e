package dev.tokensmith.interop.userservice;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.http.ResponseEntity;
import org.springframework.security.oauth2.client.OAuth2AuthorizeRequest;
import org.springframework.security.oauth2.client.OAuth2AuthorizedClient;
import org.springframework.security.oauth2.client.OAuth2AuthorizedClientManager;
import org.springframework.security.oauth2.core.OAuth2AccessToken;
import org.springframework.security.oauth2.server.resource.authentication.JwtAuthenticationToken;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.client.RestClient;

/**
 * The article's section 4.4. The method is the article's; the fields it uses but does not show are declared here,
 * with {@code TARGET_RESOURCE_SERVER_URL} read from {@code message-service.url} so a test can pick the port.
 */
@RestController
public class UserController {

    private final OAuth2AuthorizedClientManager authorizedClientManager;
    private final RestClient restClient = RestClient.create();
    private final String TARGET_RESOURCE_SERVER_URL;

    public UserController(OAuth2AuthorizedClientManager authorizedClientManager,
            @Value("${message-service.url:http://localhost:8082/message}") String targetResourceServerUrl) {
        this.authorizedClientManager = authorizedClientManager;
        this.TARGET_RESOURCE_SERVER_URL = targetResourceServerUrl;
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
        RestClient.ResponseSpec responseSpec = restClient.get().uri(TARGET_RESOURCE_SERVER_URL)
                .headers(headers -> headers.setBearerAuth(accessToken.getTokenValue()))
                .retrieve();
        ResponseEntity<String> responseEntity = responseSpec.toEntity(String.class);
        return responseEntity.getBody();
    }
}
