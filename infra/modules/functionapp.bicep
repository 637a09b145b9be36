// The Function App on the Flex Consumption plan (Linux, Python). It runs as the user-assigned
// identity for everything: host storage, deployment package, Key Vault references, Service Bus
// triggers, Application Insights. No account key or connection string is in its settings.

@description('Function App name (globally unique host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region (one that offers Flex Consumption).')
param location string

@description('Tags for every resource.')
param tags object

@description('Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Upper bound on instances the plan scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Spread instances across availability zones (needs a region with zones and ZRS storage).')
param zoneRedundant bool

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Storage account of the host (AzureWebJobsStorage) and the deployment container.')
param storageAccountName string

@description('URL of the blob container Flex Consumption deploys the package from.')
param deploymentContainerUrl string

@description('Application Insights connection string (no secret: local auth is off, telemetry is sent with the identity).')
param appInsightsConnectionString string

@description('The connector\'s own settings (shared/config.py SETTINGS), built in main.bicep.')
param appSettings object

@description('Whether the app\'s endpoints accept traffic from public networks (Dataverse and BC must reach the webhook).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('Optional subnet for outbound VNet integration (delegated to Microsoft.App/environments). Empty: none.')
param virtualNetworkSubnetId string

// Settings the Functions host and platform read (not the connector's code). Flex Consumption takes
// the runtime from functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION
// are not app settings here.
var hostSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // the Service Bus trigger's identity-based connection "ServiceBusConnection"
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
    //checkov:skip=CKV_AZURE_225:zone redundancy is the zoneRedundant parameter, off by default: it needs a region with availability zones and zone-redundant (ZRS) storage
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    // No App Service Authentication: callers are Dataverse's and BC's webhooks and administrators with
    // function keys; the code authenticates them itself (clientState in constant time, function keys).
    //checkov:skip=CKV_AZURE_17:client certificates cannot be presented by Dataverse or BC webhooks
    //checkov:skip=CKV_AZURE_212:Flex Consumption scales per event and has no worker count; set always-ready instances in functionAppConfig.scaleAndConcurrency if cold starts matter
    //checkov:skip=CKV_AZURE_213:Flex Consumption does not support App Service health check; probe GET /api/health from outside instead (docs/deploy.md, "After deploying")
    //checkov:skip=CKV_AZURE_222:public inbound is a parameter (publicNetworkAccess); Dataverse and BC reach the webhooks over the internet, so it is Enabled by default
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: publicNetworkAccess
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      cors: {
        allowedOrigins: []
      }
      // Replaces all app settings on every deployment: what is not here is not set.
      appSettings: [
        for setting in items(union(appSettings, hostSettings)): {
          name: setting.key
          value: setting.value
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No FTP and no basic-auth publishing: deployments authenticate with Microsoft Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
