namespace Tabula.Fleet.Tests.Support;

/// <summary>
/// Every test class that uses the shared cluster is in this collection, so xUnit disposes the fixture
/// (and stops the cluster) when the last of them is done, instead of relying on process exit.
/// </summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresCollection.Lifetime>
{
    public const string Name = "postgres";

    public sealed class Lifetime : IDisposable
    {
        public void Dispose() => PostgresServer.StopShared();
    }
}
