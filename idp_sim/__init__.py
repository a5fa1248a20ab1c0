"""An identity-provider simulator: Okta, JumpCloud and Entra ID provisioning traffic."""
