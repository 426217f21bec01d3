bp::network! {
    struct Net {
        input x: [4];
        let a = relu(b);
        let b = linear(x, 4);
        output a;
    }
}

fn main() {}
