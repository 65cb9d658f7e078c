namespace Tabula.Relay.Tests.Support;

/// <summary>The test classes of this assembly that use the shared PostgreSQL cluster; the last one done stops it.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresCollection.Lifetime>
{
    public const string Name = "postgres";

    public sealed class Lifetime : IDisposable
    {
        public void Dispose() => PostgresServer.StopShared();
    }
}
