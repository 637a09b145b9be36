// The connector in one resource group: Flex Consumption Function App (Python), storage (host,
// deployment package, state tables), Service Bus queues, Key Vault, Application Insights with Log
// Analytics, and the user-assigned managed identity everything runs as.
//
//   az deployment group create -g <group> -f infra/main.bicep -p infra/main.parameters.json
//
// tests/infra keeps the queues, tables and app settings below in step with shared/resources.py
// and shared/config.py: add a queue, table or setting there and here together.

targetScope = 'resourceGroup'

@description('Short name the resource names are built from (lowercase letters and digits).')
@minLength(3)
@maxLength(12)
param baseName string

@description('Azure region; must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Tags for every resource.')
param tags object = {}

// --- the connector's settings (shared/config.py) ---

@description('How the connector authenticates to Dataverse and Business Central.')
@allowed([
  'client_secret'
  'client_certificate'
  'managed_identity'
])
param authMode string = 'client_secret'

@description('Dataverse environment URL, e.g. https://contoso.crm4.dynamics.com')
param dataverseUrl string

@description('Microsoft Entra tenant id the app registration lives in.')
param tenantId string = subscription().tenantId

@description('Application (client) id of the app registration that is Dataverse\'s application user.')
param dataverseClientId string

@description('Application (client) id registered in BC\'s Microsoft Entra Applications (often the same as dataverseClientId).')
param bcClientId string

@description('Business Central API root: https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0')
param bcApiUrl string

@description('Id (GUID) of the Business Central company this deployment serves.')
param bcCompanyId string

@description('Token scope for the BC API.')
param bcScope string = 'https://api.businesscentral.dynamics.com/.default'

@description('JSON overrides of the default integration table mappings (see docs/mappings.md); empty for the defaults.')
param mappingOverrides string = ''

@description('NCRONTAB (6 fields) of the scheduled incremental sync of every mapping.')
param scheduleMappingSync string = '0 */5 * * * *'

@description('NCRONTAB (6 fields) of the posted sales invoice job (BC invoices of coupled customers into Sales).')
param schedulePostedInvoices string = '0 */30 * * * *'

@description('NCRONTAB (6 fields) of the invoice payment status job.')
param schedulePaymentStatus string = '0 */30 * * * *'

@description('NCRONTAB (6 fields) of the account statistics job.')
param scheduleAccountStatistics string = '0 */30 * * * *'

@description('Public URL of the app\'s POST /api/webhooks/bc that BC notifies, e.g. https://<default host name>/api/webhooks/bc (the functionAppUrl output). Empty: BC webhooks off until set.')
param webhookNotificationUrl string = ''

@description('Optional: the BC webhook clientState secret (16-2048 characters) to store in Key Vault now. Empty: set it later (docs/deploy.md); webhooks stay off until then.')
@secure()
param webhookClientState string = ''

@description('NCRONTAB (6 fields) of the BC webhook subscription renewal (subscriptions expire after 3 days).')
param scheduleWebhookRenewal string = '0 0 */12 * * *'

@description('Automatically create BC orders from submitted Sales orders (push to the sales-orders queue and the poll).')
param autoCreateSalesOrders bool = false

@description('Automatically process activated and won Sales quotes in BC (push to the quotes queue and the poll).')
param autoProcessSalesQuotes bool = false

@description('NCRONTAB (6 fields) of the safety-net poll for submitted Sales orders.')
param scheduleSalesOrderPoll string = '0 */5 * * * *'

@description('NCRONTAB (6 fields) of the order follow-up (BC order status, shipments and invoices to Sales orders).')
param scheduleOrderFollowup string = '0 */7 * * * *'

@description('Seconds one full-synchronization message works on a mapping before it saves its place and queues the next (keep well below the function timeout).')
param fullSyncStepSeconds int = 240

@description('Records per page a full synchronization reads; 0 = each API\'s maximum (20,000 BC, 5,000 Dataverse).')
param fullSyncPageSize int = 0

@description('NCRONTAB (6 fields) of the safety-net poll for activated Sales quotes.')
param scheduleSalesQuotePoll string = '0 */5 * * * *'

@description('Number of the BC item that receives Sales write-in product lines (must not be coupled). Empty: write-in lines fail with a stored error.')
param writeInProductNo string = ''

@description('G/L account number of the freight line of converted Sales orders. Empty: freight is not transferred.')
param freightGlAccountNo string = ''

@description('client_certificate mode only: path of the PEM (key and certificate) for Dataverse, readable by the app.')
param dataverseClientCertificatePath string = ''

@description('client_certificate mode only: path of the PEM (key and certificate) for BC, readable by the app.')
param bcClientCertificatePath string = ''

@description('Optional: Dataverse client secret to store in Key Vault now. Empty: set it later (docs/deploy.md).')
@secure()
param dataverseClientSecret string = ''

@description('Optional: BC client secret to store in Key Vault now. Empty: set it later (docs/deploy.md).')
@secure()
param bcClientSecret string = ''

// --- sizing and network ---

@description('Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Memory of each Function App instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound on Function App instances.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Spread Function App instances across availability zones (needs a region with zones; use ZRS storage with it).')
param zoneRedundant bool = false

@description('Service Bus tier.')
@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@description('Deliveries of a queue message before it is dead-lettered.')
@minValue(1)
param maxDeliveryCount int = 10

@description('Peek-lock duration of the queues (ISO 8601, at most PT5M).')
param lockDuration string = 'PT1M'

@description('Time to live of a queue message (ISO 8601).')
param messageTimeToLive string = 'P14D'

@description('Days Log Analytics keeps data.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Public inbound access to the Function App (Dataverse and BC webhooks need it unless fronted privately).')
@allowed([
  'Enabled'
  'Disabled'
])
param appPublicNetworkAccess string = 'Enabled'

@description('Public network access to storage, Service Bus and Key Vault. Disabled needs VNet integration (virtualNetworkSubnetId) and private endpoints, which this template does not create.')
@allowed([
  'Enabled'
  'Disabled'
])
param dataPublicNetworkAccess string = 'Enabled'

@description('Optional subnet (delegated to Microsoft.App/environments) for the app\'s outbound VNet integration.')
param virtualNetworkSubnetId string = ''

@description('Optional object id of the operator (user or group) who sets secrets in Key Vault; gets Key Vault Secrets Officer.')
param secretsOfficerPrincipalId string = ''

@description('Principal type of secretsOfficerPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param secretsOfficerPrincipalType string = 'User'

// --- what the code uses: keep in step with shared/resources.py (tests/infra checks it) ---

// shared/resources.py QUEUES
var serviceBusQueues = [
  'sales-orders'
  'quotes'
  'coupling'
  'full-sync'
  'record-sync'
  'dataverse-events'
]

// Queues Dataverse's service endpoints post to (a send-only SAS rule each, its connection string in Key Vault)
var dataverseEndpointQueues = [
  'sales-orders'
  'quotes'
  'dataverse-events'
]

// shared/resources.py TABLES
var stateTables = [
  'Couplings'
  'SyncJobs'
  'SyncErrors'
  'Watermarks'
  'FullSyncRuns'
  'ConversionLedger'
  'QuoteArchive'
  'Leases'
]

var suffix = uniqueString(resourceGroup().id, baseName)
var names = {
  identity: 'id-${baseName}-${suffix}'
  workspace: 'log-${baseName}-${suffix}'
  appInsights: 'appi-${baseName}-${suffix}'
  storage: take('st${baseName}${suffix}', 24)
  serviceBus: 'sb-${baseName}-${suffix}'
  keyVault: take('kv-${baseName}-${suffix}', 24)
  plan: 'plan-${baseName}-${suffix}'
  functionApp: 'func-${baseName}-${suffix}'
}
var deploymentContainerName = 'app-package'
var dataverseSecretName = 'dataverse-client-secret'
var bcSecretName = 'bc-client-secret'
var webhookClientStateSecretName = 'webhook-client-state'
// Written by modules/servicebus.bicep from the send-only rule of the queue Dataverse posts changes to
var dataverseEventsSendSecretName = 'servicebus-dataverse-events-dataverse-send'
var authority = '${environment().authentication.loginEndpoint}${tenantId}'

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
    principalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: tags
    tableNames: stateTables
    deploymentContainerName: deploymentContainerName
    publicNetworkAccess: dataPublicNetworkAccess
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyVault'
  params: {
    name: names.keyVault
    location: location
    tags: tags
    publicNetworkAccess: dataPublicNetworkAccess
    principalId: identity.outputs.principalId
    secretsOfficerPrincipalId: secretsOfficerPrincipalId
    secretsOfficerPrincipalType: secretsOfficerPrincipalType
    clientSecrets: {
      '${dataverseSecretName}': dataverseClientSecret
      '${bcSecretName}': bcClientSecret
      '${webhookClientStateSecretName}': webhookClientState
    }
    workspaceId: monitoring.outputs.workspaceId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'serviceBus'
  params: {
    name: names.serviceBus
    location: location
    tags: tags
    sku: serviceBusSku
    queueNames: serviceBusQueues
    dataverseEndpointQueues: dataverseEndpointQueues
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    defaultMessageTimeToLive: messageTimeToLive
    publicNetworkAccess: dataPublicNetworkAccess
    keyVaultName: keyVault.outputs.name
    principalId: identity.outputs.principalId
  }
}

// shared/config.py SETTINGS as set in Azure. Not set here, on purpose (see tests/infra):
// CONNECTOR_CA_BUNDLE and the local connection strings StateTablesConnection / ServiceBusConnection.
var secretsInKeyVault = authMode == 'client_secret'
var connectorSettings = {
  CONNECTOR_AUTH_MODE: authMode
  DATAVERSE_URL: dataverseUrl
  DATAVERSE_AUTHORITY: authority
  DATAVERSE_CLIENT_ID: dataverseClientId
  DATAVERSE_CLIENT_SECRET: secretsInKeyVault ? '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${dataverseSecretName})' : ''
  DATAVERSE_CLIENT_CERTIFICATE_PATH: dataverseClientCertificatePath
  BC_API_URL: bcApiUrl
  BC_COMPANY_ID: bcCompanyId
  BC_SCOPE: bcScope
  BC_AUTHORITY: authority
  BC_CLIENT_ID: bcClientId
  BC_CLIENT_SECRET: secretsInKeyVault ? '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${bcSecretName})' : ''
  BC_CLIENT_CERTIFICATE_PATH: bcClientCertificatePath
  StateTablesConnection__tableServiceUri: storage.outputs.tableEndpoint
  ServiceBusConnection__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
  AZURE_CLIENT_ID: identity.outputs.clientId
  MAPPING_OVERRIDES: mappingOverrides
  SCHEDULE_MAPPING_SYNC: scheduleMappingSync
  SCHEDULE_POSTED_INVOICES: schedulePostedInvoices
  SCHEDULE_PAYMENT_STATUS: schedulePaymentStatus
  SCHEDULE_ACCOUNT_STATISTICS: scheduleAccountStatistics
  WEBHOOK_NOTIFICATION_URL: webhookNotificationUrl
  WEBHOOK_CLIENT_STATE: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${webhookClientStateSecretName})'
  DATAVERSE_SERVICEBUS_CONNECTION: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${dataverseEventsSendSecretName})'
  SCHEDULE_WEBHOOK_RENEWAL: scheduleWebhookRenewal
  AUTO_CREATE_SALES_ORDERS: autoCreateSalesOrders ? 'true' : 'false'
  AUTO_PROCESS_SALES_QUOTES: autoProcessSalesQuotes ? 'true' : 'false'
  SCHEDULE_SALES_ORDER_POLL: scheduleSalesOrderPoll
  SCHEDULE_ORDER_FOLLOWUP: scheduleOrderFollowup
  FULL_SYNC_STEP_SECONDS: string(fullSyncStepSeconds)
  FULL_SYNC_PAGE_SIZE: fullSyncPageSize == 0 ? '' : string(fullSyncPageSize)
  SCHEDULE_SALES_QUOTE_POLL: scheduleSalesQuotePoll
  WRITE_IN_PRODUCT_TYPE: 'Item'
  WRITE_IN_PRODUCT_NO: writeInProductNo
  FREIGHT_GL_ACCOUNT_NO: freightGlAccountNo
  DATAVERSE_SERVICEBUS_CONNECTION_SALES_ORDERS: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=servicebus-sales-orders-dataverse-send)'
  DATAVERSE_SERVICEBUS_CONNECTION_QUOTES: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=servicebus-quotes-dataverse-send)'
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionApp'
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    zoneRedundant: zoneRedundant
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    appSettings: connectorSettings
    publicNetworkAccess: appPublicNetworkAccess
    virtualNetworkSubnetId: virtualNetworkSubnetId
  }
}

output functionAppName string = functionApp.outputs.name
output functionAppUrl string = 'https://${functionApp.outputs.defaultHostName}'
output keyVaultName string = keyVault.outputs.name
output storageAccountName string = storage.outputs.name
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output dataverseEndpointSecretNames array = serviceBus.outputs.dataverseEndpointSecretNames
output managedIdentityClientId string = identity.outputs.clientId
