// Key Vault (RBAC mode) for the Dataverse / Business Central client secrets and the Dataverse
// service endpoints' Service Bus connection strings. The app's identity may read secrets and
// nothing else; an optional operator principal may write them.

@description('Key Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Whether the vault accepts traffic from public networks.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('Principal id of the managed identity the app runs as (gets Key Vault Secrets User).')
param principalId string

@description('Optional principal (user or group object id) that sets the client secrets; gets Key Vault Secrets Officer. Empty: none.')
param secretsOfficerPrincipalId string

@description('Principal type of secretsOfficerPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param secretsOfficerPrincipalType string

@description('Names of the client-secret secrets and, when given, their values (empty value: set later with az keyvault secret set).')
@secure()
param clientSecrets object

@description('Log Analytics workspace for the vault\'s audit log.')
param workspaceId string

// Key Vault Secrets User / Key Vault Secrets Officer
var secretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var secretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    //checkov:skip=CKV_AZURE_189:public network access is the publicNetworkAccess parameter; Enabled by default because a Flex Consumption app without VNet integration resolves Key Vault references over the public endpoint
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      //checkov:skip=CKV_AZURE_109:Key Vault references of a Flex Consumption app without VNet integration resolve over the public endpoint; every call is Entra-authenticated and RBAC-checked. Set publicNetworkAccess=Disabled together with VNet integration and a private endpoint to close it
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource clientSecretValues 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = [
  for secret in items(clientSecrets): if (!empty(secret.value)) {
    parent: vault
    name: secret.key
    properties: {
      //checkov:skip=CKV_AZURE_41:the expiry belongs to the Entra app registration's secret; rotate there and here together (docs/deploy.md), a vault-side expiry would only break the app earlier
      contentType: 'text/plain; Microsoft Entra client secret'
      value: secret.value
    }
  }
]

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, secretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUserRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerPrincipalId)) {
  name: guid(vault.id, secretsOfficerPrincipalId, secretsOfficerRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsOfficerRoleId)
    principalId: secretsOfficerPrincipalId
    principalType: secretsOfficerPrincipalType
  }
}

resource auditLog 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
