// Service Bus namespace and the connector's queues. The app sends and receives with its managed
// identity. The one shared-access rule per Dataverse-fed queue is send-only and queue-scoped: it is
// what Dataverse's service endpoint authenticates with, and its connection string goes straight
// into Key Vault, never into an output or an app setting.

@description('Service Bus namespace name (globally unique).')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Namespace tier. Standard is the smallest with everything the queues use.')
@allowed([
  'Standard'
  'Premium'
])
param sku string

@description('Queues the connector uses (shared/resources.py QUEUES).')
param queueNames array

@description('Queues Dataverse\'s service endpoint posts to; each gets a send-only rule whose connection string is stored in Key Vault.')
param dataverseEndpointQueues array

@description('Deliveries before a message is dead-lettered.')
@minValue(1)
param maxDeliveryCount int

@description('Peek-lock duration (ISO 8601, at most PT5M); the host renews the lock while a handler runs.')
param lockDuration string

@description('Time to live of a message (ISO 8601); expired messages are dead-lettered.')
param defaultMessageTimeToLive string

@description('Whether the namespace accepts traffic from public networks.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('Key Vault that receives the Dataverse endpoints\' connection strings.')
param keyVaultName string

@description('Principal id of the managed identity the app runs as.')
param principalId string

// Azure Service Bus Data Sender / Data Receiver
var senderRoleId = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var receiverRoleId = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
  }
  properties: {
    minimumTlsVersion: '1.2'
    publicNetworkAccess: publicNetworkAccess
    // Local (SAS) auth stays on: Dataverse's service endpoint can only authenticate with a SAS key; the only SAS rules are the queue-scoped send-only ones below, the app itself uses Entra ID
    disableLocalAuth: false
  }
}

resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [
  for queue in queueNames: {
    parent: namespace
    name: queue
    properties: {
      maxDeliveryCount: maxDeliveryCount
      lockDuration: lockDuration
      defaultMessageTimeToLive: defaultMessageTimeToLive
      deadLetteringOnMessageExpiration: true
      requiresSession: false
      enablePartitioning: false
    }
  }
]

resource dataverseSendRules 'Microsoft.ServiceBus/namespaces/queues/authorizationRules@2024-01-01' = [
  for queue in dataverseEndpointQueues: {
    name: '${namespace.name}/${queue}/dataverse-send'
    properties: {
      rights: [
        'Send'
      ]
    }
    dependsOn: [
      queues
    ]
  }
]

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource dataverseSendSecrets 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = [
  for (queue, i) in dataverseEndpointQueues: {
    parent: vault
    name: 'servicebus-${queue}-dataverse-send'
    properties: {
      //checkov:skip=CKV_AZURE_41:the value is the rule's current key, rotated with the rule (regenerate the key, redeploy), not on a calendar; an expiry would silently break Dataverse's endpoint
      contentType: 'text/plain; Service Bus connection string (send-only, queue-scoped) for Dataverse service endpoint'
      value: dataverseSendRules[i].listKeys().primaryConnectionString
    }
  }
]

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, principalId, senderRoleId)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', senderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource receiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, principalId, receiverRoleId)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', receiverRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = namespace.name
// host part of https://<name>.servicebus.windows.net:443/, whatever the cloud
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
output dataverseEndpointSecretNames array = [for queue in dataverseEndpointQueues: 'servicebus-${queue}-dataverse-send']
